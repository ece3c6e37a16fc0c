"""Runs the example project end to end.

migrate -> serve with gunicorn -> start a worker -> run a task three ways (``run()``,
``start()``, HTTP) -> a model reference in params, a typed result fetched with ``wait()``, a
slow task's progress (as the admin shows it) -> the e-mails the tasks sent -> ``tasks_status``.

Usage (from the repository root): ``scripts/example.sh`` (sets up the virtualenv first).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run the walkthrough; return the process exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="dgt-example-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "django_generic_tasks_example.settings",
        "EXAMPLE_DB": str(workdir / "db.sqlite3"),
        "EXAMPLE_EMAIL_DIR": str(workdir / "sent_emails"),
        "PYTHONPATH": str(HERE),
    }
    os.environ.update(env)
    sys.path.insert(0, str(HERE))
    manage = [sys.executable, "manage.py"]
    step("1. python manage.py migrate (SQLite), and an admin user")
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=HERE, env=env, check=True)
    password = secrets.token_urlsafe(12)
    subprocess.run(
        [
            *manage,
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        ],
        cwd=HERE,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": password},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"   admin user: admin / {password} (for /admin/ while the demo runs)")

    port = free_port()
    step(f"2. serve the project with gunicorn on http://127.0.0.1:{port}, and start a worker")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "django_generic_tasks_example.wsgi"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"),
        ],
        cwd=HERE,
        env=env,
    )
    worker = subprocess.Popen(
        [*manage, "tasks_worker", "--concurrency", "2", "--interval", "0.2"], cwd=HERE, env=env
    )
    print(f"   gunicorn pid {server.pid}; python manage.py tasks_worker pid {worker.pid}")
    try:
        wait_for_port(port)
        return walkthrough(port, workdir, password)
    finally:
        for process in (worker, server):
            process.terminate()
        for process in (worker, server):
            process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def walkthrough(port: int, workdir: Path, password: str) -> int:
    """The README's flow (run(), start(), HTTP), what tasks know of themselves, the results."""
    import django

    django.setup()
    from django_generic_tasks.conf import get_backend
    from my_app.tasks import EmailNotificationParams, EmailNotificationTask

    params = EmailNotificationParams(
        subject="Hello",
        content="Have a nice day",
        recipients=["alice@example.com", "bob@example.com"],
    )
    task = EmailNotificationTask(params)

    step("3. task.run(): runs now, in this process")
    print(f"   run() returned {task.run()!r} (messages sent)")

    step(f"4. task.start(): a row for TASKS_BACKEND ({type(get_backend()).__name__})")
    handle = task.start()
    print(f"   started run {handle.id}: {handle.status}")
    deadline = time.monotonic() + 60
    while not handle.refresh().status.is_finished and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"   the worker ran it: {handle.status}, result {handle.result!r}")

    name = EmailNotificationTask.name
    body = {
        "subject": "Hello over HTTP",
        "content": "Sent by the endpoint",
        "recipients": ["carol@example.com"],
    }
    step(f"5. POST /api/tasks/{name}: runs it now, over HTTP")
    status, reply = post(port, f"/api/tasks/{name}", body)
    print(f"   HTTP {status}: {json.dumps(reply)}")
    if status != 200:
        return 1
    status, reply = post(port, f"/api/tasks/{name}", {"subject": 42})
    print(f"   invalid params -> HTTP {status}: {json.dumps(reply)[:160]}...")

    step(f"6. POST /api/tasks/{name}/start, then GET /api/tasks/runs/<id>")
    body["subject"] = "Hello from the worker"
    status, reply = post(port, f"/api/tasks/{name}/start", body)
    print(f"   HTTP {status}: {json.dumps(reply)}")
    if status != 202:
        return 1
    run = poll_run(port, str(reply["run_id"]))
    print(f"   HTTP 200: {json.dumps(run)}")
    if run.get("status") != "succeeded":
        return 1

    if not task_model(AdminSession(port, "admin", password)):
        return 1

    step("10. the e-mails the tasks sent")
    emails = sorted((workdir / "sent_emails").glob("*.log"))
    for email in emails:
        for line in email.read_text().splitlines():
            if line.startswith(("Subject:", "To:")):
                print(f"   {line}")

    step("11. python manage.py tasks_status: what the dashboard shows, on the command line")
    subprocess.run([sys.executable, "manage.py", "tasks_status"], cwd=HERE, check=True)
    print(
        f"\nDone: {len(emails)} e-mail file(s) written. While a server runs, the docs are at "
        "/api/docs, the runs at /admin/django_generic_tasks/taskrun/ and the live dashboard "
        "(throughput, queues, tasks, workers) at /admin/django_generic_tasks/dashboard/."
    )
    return 0


def task_model(admin: AdminSession) -> bool:
    """A model reference in params, a typed result and wait(), progress as the admin shows it."""
    from django.contrib.auth.models import User

    import django_generic_tasks as tasks
    from my_app.tasks import QuoteTask, ReindexTask, WelcomeParams, WelcomeUserTask

    step("7. tasks.ModelRef[User]: the params carry the pk, run() gets the User")
    ada = User.objects.create_user("ada", "ada@example.com")
    print(f"   params JSON: {WelcomeParams(user=ada).model_dump_json()}")
    sent = WelcomeUserTask({"user": ada}).start().wait(timeout=60)
    print(f"   the worker loaded ada and mailed her: wait() returned {sent!r}")
    grace = User.objects.create_user("grace", "grace@example.com")
    welcome_grace = WelcomeUserTask({"user": grace})
    User.objects.filter(pk=grace.pk).delete()  # the account is gone before the run starts
    try:
        welcome_grace.start().wait(timeout=60)
    except tasks.RunFailedError as exc:
        print(f"   a deleted user: the run ended {exc.status}, {exc.error.message}")
    else:
        return False

    step("8. tasks.Task[QuoteParams, Quote]: a typed result, fetched with handle.wait()")
    basket = {
        "items": [
            {"sku": "tea", "quantity": 3, "unit_price": "4.50"},
            {"sku": "mug", "quantity": 1, "unit_price": "12.00"},
        ]
    }
    quote = QuoteTask(basket).start().wait(timeout=60)
    print(f"   handle.wait(timeout=60) returned a {type(quote).__name__}: {quote!r}")
    print(f"   total {quote.total} EUR (VAT {quote.vat})")

    step("9. self.report_progress(): a slow task's progress, as handle and admin see it")
    handle = ReindexTask({"batches": 5}).start()
    pages = {
        "run list": f"/admin/django_generic_tasks/taskrun/?task_name={ReindexTask.name}",
        "run page": f"/admin/django_generic_tasks/taskrun/{handle.id}/change/",
    }
    seen, shown = None, False
    while not handle.refresh().status.is_finished:
        progress = handle.progress
        if progress is not None and (progress.done, progress.message) != seen:
            seen = (progress.done, progress.message)
            print(f"   handle.refresh().progress: {progress.fraction:.0%}, {progress.message}")
            if not shown:  # once is enough: the bars are read from the same column
                bars = {label: admin.progress_on(page) for label, page in pages.items()}
                for label, bar in bars.items():
                    print(f"   the admin's {label} ({pages[label]}): {bar or 'no progress bar'}")
                shown = all(bars.values())
        time.sleep(0.1)
    last = handle.progress.message if handle.progress else "no progress stored"
    print(f"   finished: {handle.status} ({last}); handle.wait() returned {handle.wait()!r}")
    return shown and handle.result == 5


class AdminSession:
    """A user logged in to the served project's admin (its cookies kept between requests)."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login = self.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)
        assert token, "no CSRF token on the admin's login page"
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
        request = urllib.request.Request(
            f"{self.base}/admin/login/?next=/admin/", data=urllib.parse.urlencode(form).encode()
        )
        with self.opener.open(request, timeout=30) as response:
            assert "/admin/login/" not in response.url, "the admin login failed"

    def get(self, path: str) -> str:
        """GET ``path`` as this user; the page's HTML."""
        with self.opener.open(f"{self.base}{path}", timeout=30) as response:
            return str(response.read().decode())

    def progress_on(self, path: str) -> str:
        """The progress bar of the run page at ``path``, as text ("" when it shows none)."""
        bar = re.search(r"<progress [^>]*>(.*?)</progress>([^<]*)", self.get(path))
        return f"{bar[1]} {' '.join(bar[2].split())}" if bar else ""


def poll_run(port: int, run_id: str, timeout: float = 60) -> dict[str, Any]:
    """GET the run until it has finished (or ``timeout`` passes); return its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/tasks/runs/{run_id}", timeout=30
        ) as response:
            run: dict[str, Any] = json.loads(response.read())
        if run["status"] in {"succeeded", "failed", "discarded", "cancelled"}:
            return run
        if time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def post(port: int, path: str, body: object) -> tuple[int, Any]:
    """POST JSON and return (status, decoded JSON body)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def step(text: str) -> None:
    """Print a step heading."""
    print(f"\n== {text}", flush=True)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Wait until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


if __name__ == "__main__":
    sys.exit(main())
