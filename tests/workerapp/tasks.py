"""Tasks that leave their side effects in files under ``$TASKS_TEST_STORE``.

Worker processes (Celery, django-tasks-db's ``db_worker``) run these, so the test process
observes them through the file system: one file per token, one line per event.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel

import django_generic_tasks as tasks


class Transient(Exception):
    """A failure worth retrying."""


class Permanent(Exception):
    """A failure that retrying cannot fix."""


def store_dir() -> Path:
    """The directory that worker tasks write to (``TASKS_TEST_STORE``)."""
    return Path(os.environ.get("TASKS_TEST_STORE", "/tmp/django-generic-tasks-store"))


def record(token: str, event: str) -> None:
    """Append ``event`` (with the time) to the token's file; one small write, so it is atomic."""
    path = store_dir() / token
    with path.open("a", encoding="utf-8") as stream:
        stream.write(f"{time.time():.6f} {event}\n")


def events(token: str) -> list[tuple[float, str]]:
    """The events recorded for ``token``, oldest first."""
    path = store_dir() / token
    if not path.exists():
        return []
    # Only whole lines: one being appended right now may be read in part (no newline yet).
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [(float(when), what) for when, _, what in (line.partition(" ") for line in lines)]


class TokenParams(BaseModel):
    token: str
    failures: int = 0


class RecordTask(tasks.Task[TokenParams]):
    """Records that it ran."""

    name = "tests.worker.record"

    def run(self) -> str:
        record(self.params.token, "ran")
        return self.params.token


class FlakyRecordTask(tasks.Task[TokenParams]):
    """Fails ``failures`` times, then succeeds; a token starting with "discard" is discarded."""

    name = "tests.worker.flaky"
    max_attempts = 4
    backoff_base = 0.2
    backoff_jitter = False
    retry_on = (Transient,)
    discard_on = (Permanent,)

    def run(self) -> str:
        record(self.params.token, "attempt")
        if self.params.token.startswith("discard"):
            raise Permanent("no point retrying")
        attempts = sum(1 for _, what in events(self.params.token) if what == "attempt")
        if attempts <= self.params.failures:
            raise Transient(f"failure {attempts}")
        record(self.params.token, "succeeded")
        return self.params.token


class SleepyTask(tasks.Task[TokenParams]):
    """On its first delivery, records "started" and sleeps long enough to be killed."""

    name = "tests.worker.sleepy"

    def run(self) -> str:
        record(self.params.token, "started")
        if sum(1 for _, what in events(self.params.token) if what == "started") == 1:
            time.sleep(120)
        record(self.params.token, "done")
        return self.params.token


class NoopTask(tasks.Task[TokenParams]):
    """Does nothing (benchmarks)."""

    name = "tests.worker.noop"

    def run(self) -> None:
        return None


class HoldTask(tasks.Task[TokenParams]):
    """Records "started", then waits until ``release(token)`` is called (at most 60 s)."""

    name = "tests.worker.hold"

    def run(self) -> str:
        record(self.params.token, "started")
        deadline = time.monotonic() + 60
        while not (store_dir() / f"{self.params.token}.release").exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        record(self.params.token, "done")
        return self.params.token


def release(token: str) -> None:
    """Let the ``HoldTask`` run of ``token`` finish."""
    (store_dir() / f"{token}.release").touch()
