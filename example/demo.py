"""Runs the example project end to end.

migrate -> serve with gunicorn -> start a worker -> run a task three ways (``run()``,
``start()``, HTTP) -> show the runs' results and the e-mails the tasks sent.

Usage (from the repository root): ``scripts/example.sh`` (sets up the virtualenv first).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
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
    step("1. python manage.py migrate (SQLite)")
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=HERE, env=env, check=True)

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
        return walkthrough(port, workdir)
    finally:
        for process in (worker, server):
            process.terminate()
        for process in (worker, server):
            process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def walkthrough(port: int, workdir: Path) -> int:
    """The README's flow: run(), start(), and HTTP; then the results."""
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

    step("7. the e-mails the tasks sent")
    emails = sorted((workdir / "sent_emails").glob("*.log"))
    for email in emails:
        for line in email.read_text().splitlines():
            if line.startswith(("Subject:", "To:")):
                print(f"   {line}")

    step("8. python manage.py tasks_status: what the dashboard shows, on the command line")
    subprocess.run([sys.executable, "manage.py", "tasks_status"], cwd=HERE, check=True)
    print(
        f"\nDone: {len(emails)} e-mail file(s) written. While a server runs, the docs are at "
        "/api/docs, the runs at /admin/django_generic_tasks/taskrun/ and the live dashboard "
        "(throughput, queues, tasks, workers) at /admin/django_generic_tasks/dashboard/."
    )
    return 0


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
