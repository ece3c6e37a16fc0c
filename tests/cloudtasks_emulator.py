"""The Cloud Tasks emulator (PyPI ``gcloud-tasks-emulator``) as a process for tests and benches.

The emulator pins ``protobuf<5``, which current ``google-cloud-tasks`` cannot use, so it lives in
its own virtualenv, ``.venv-emulator`` at the repository root, built on demand with this
interpreter and reused while its requirement is unchanged. ``python -m tests.cloudtasks_emulator``
builds it ahead of time.

What the emulator does (read from its source, 0.6.x): gRPC only, on an insecure port; one
dispatch thread per queue that POSTs tasks to ``http_request.url`` one after another, with the
task's own headers plus ``X-CloudTasks-TaskRetryCount``; a 4xx/5xx answer puts the task back at
the end of its queue (about every 100 ms); it ignores ``oidc_token`` and never deduplicates
task names.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-emulator"
REQUIREMENT = "gcloud-tasks-emulator>=0.6.2,<0.7"
PROJECT = "test-project"
LOCATION = "test-location"


class EmulatorUnavailable(RuntimeError):
    """The emulator could not be installed or started (the message says why)."""


def ensure_venv() -> Path:
    """Return the emulator's executable, building its virtualenv first if needed."""
    executable = VENV / "bin" / "gcloud-tasks-emulator"
    marker = VENV / ".requirement"
    lock_path = Path(tempfile.gettempdir()) / "django-generic-tasks-emulator-venv.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs share one build
        if executable.exists() and marker.exists() and marker.read_text() == REQUIREMENT:
            return executable
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            [
                str(VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                REQUIREMENT,
            ],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, check=False, capture_output=True, text=True, timeout=600
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise EmulatorUnavailable(f"cannot build {VENV}: {exc}") from exc
            if done.returncode != 0:
                raise EmulatorUnavailable(
                    f"cannot build {VENV} ({' '.join(step[:4])} ...): "
                    + " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
                )
        marker.write_text(REQUIREMENT)
        return executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    """A running emulator process and a client to manage its queues."""

    def __init__(self, executable: Path) -> None:
        self.executable = executable
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="cloudtasks-emulator-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    @property
    def client(self) -> Any:
        """A ``CloudTasksClient`` talking to this emulator."""
        if self._client is None:
            from django_generic_tasks.backends.cloudtasks.client import new_client

            self._client = new_client(self.host)
        return self._client

    def command(self) -> list[str]:
        """The command line that starts the emulator on ``self.port`` (benches extend it)."""
        return [str(self.executable), "start", "--port", str(self.port)]

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until it answers gRPC calls."""
        self.process = subprocess.Popen(
            self.command(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise EmulatorUnavailable(f"the emulator exited early: {self.log_tail()}")
            try:
                self.client.list_queues(
                    parent=f"projects/{PROJECT}/locations/{LOCATION}", timeout=1.0
                )
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmulatorUnavailable(
                        f"the emulator did not answer on {self.host} within {timeout:g}s "
                        f"({exc}): {self.log_tail()}"
                    ) from exc
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the process (interrupt, then kill) and close the client."""
        if self._client is not None:
            self._client.transport.close()
            self._client = None
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
        self.log.close()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the emulator's output, for error messages."""
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def create_queue(self, queue_id: str | None = None, *, paused: bool = False) -> str:
        """Create a queue (a fresh unique one by default); return its full path."""
        queue_id = queue_id or f"q-{uuid.uuid4().hex[:12]}"
        path = f"projects/{PROJECT}/locations/{LOCATION}/queues/{queue_id}"
        self.client.create_queue(
            parent=f"projects/{PROJECT}/locations/{LOCATION}", queue={"name": path}
        )
        if paused:
            self.client.pause_queue(name=path)
        return path

    def delete_queue(self, path: str) -> None:
        """Delete a queue and whatever tasks it still holds."""
        self.client.delete_queue(name=path)

    def list_tasks(self, path: str) -> list[Any]:
        """The tasks the emulator still holds in queue ``path`` (waiting or to be retried)."""
        return list(self.client.list_tasks(parent=path).tasks)


def start_emulator() -> Emulator:
    """Build the virtualenv if needed and start an emulator (``EmulatorUnavailable`` if not)."""
    emulator = Emulator(ensure_venv())
    emulator.start()
    return emulator


@pytest.fixture(scope="session")
def cloudtasks_emulator() -> Iterator[Emulator]:
    """A running Cloud Tasks emulator for the session; skips (fails under CI) without one."""
    from tests.conftest import need_service

    try:
        emulator = start_emulator()
    except EmulatorUnavailable as exc:
        need_service(f"Cloud Tasks emulator unavailable: {exc}")
        raise  # unreachable: need_service skips or fails
    try:
        yield emulator
    finally:
        emulator.stop()


if __name__ == "__main__":
    try:
        print(ensure_venv())
    except EmulatorUnavailable as exc:
        sys.exit(f"error: {exc}")
