"""Runs the example project end to end: migrate, serve, run tasks three ways, show the e-mails.

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
    step("1. migrate the SQLite database")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=HERE, env=env, check=True)

    port = free_port()
    step(f"2. serve the project with gunicorn on http://127.0.0.1:{port}")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "django_generic_tasks_example.wsgi",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
        cwd=HERE, env=env,
    )
    try:
        wait_for_port(port)
        return walkthrough(port, workdir)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def walkthrough(port: int, workdir: Path) -> int:
    """The README's flow: run(), start(), and HTTP."""
    import django

    django.setup()
    from my_app.tasks import EmailNotificationParams, EmailNotificationTask

    from django_generic_tasks.conf import get_backend

    params = EmailNotificationParams(
        subject="Hello",
        content="Have a nice day",
        recipients=["alice@example.com", "bob@example.com"],
    )
    task = EmailNotificationTask(params)

    step("3. task.run(): runs now, in this process")
    print(f"   run() returned {task.run()!r} (messages sent)")

    step(f"4. task.start(): hands the task to TASKS_BACKEND ({type(get_backend()).__name__})")
    handle = task.start()
    print(f"   started run {handle.id} of {handle.name}: {handle.status}")
    wait_idle = getattr(get_backend(), "wait_idle", None)
    if callable(wait_idle):
        wait_idle(10)
        print("   the backend finished it")

    step(f"5. POST /api/tasks/{EmailNotificationTask.name} over HTTP")
    body = {"subject": "Hello over HTTP", "content": "Sent by the endpoint", "recipients": ["carol@example.com"]}
    status, reply = post(port, f"/api/tasks/{EmailNotificationTask.name}", body)
    print(f"   HTTP {status}: {json.dumps(reply)}")
    if status != 200:
        return 1
    status, reply = post(port, f"/api/tasks/{EmailNotificationTask.name}", {"subject": 42})
    print(f"   invalid params -> HTTP {status}: {json.dumps(reply)[:200]}")

    step("6. the e-mails the tasks sent")
    emails = sorted((workdir / "sent_emails").glob("*.log"))
    for email in emails:
        for line in email.read_text().splitlines():
            if line.startswith(("Subject:", "To:")):
                print(f"   {line}")
    print(f"\nDone: {len(emails)} e-mail file(s) written. Docs at /api/docs while the server runs.")
    return 0


def post(port: int, path: str, body: object) -> tuple[int, object]:
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
