"""DjangoTasksBackend on django-tasks-db with its ``db_worker`` as a real process.

The worker (settings tests/settings_django_tasks.py) reads the test database that pytest
created, so this needs a database two processes can share: PostgreSQL, or SQLite in a file
(``TASKS_TEST_SQLITE_TEST``). Tasks record their side effects in files.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from django_generic_tasks import conf
from django_generic_tasks.core.status import TaskStatus
from tests.polling import wait_until
from tests.workerapp.tasks import FlakyRecordTask, RecordTask, events

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("django_tasks_db") is None
        or importlib.util.find_spec("django.tasks") is None,
        reason="needs Django >= 6.0 and django-tasks-db",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
TASKS = {
    "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}


@pytest.fixture
def db_worker(transactional_db: None, tmp_path: Path) -> Iterator[Path]:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip(
            "db_worker needs a test database another process can open: use PostgreSQL "
            "(DATABASE_URL) or set TASKS_TEST_SQLITE_TEST to a file"
        )
    store = tmp_path / "store"
    store.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_django_tasks",
        "TASKS_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "TASKS_TEST_STORE": str(store),
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "django", "db_worker", "--backend", "db"]
    command += ["--interval", "0.05", "--no-startup-delay", "--no-reload", "-v", "2"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    previous = os.environ.get("TASKS_TEST_STORE")
    os.environ["TASKS_TEST_STORE"] = str(store)
    try:
        with override_settings(TASKS=TASKS):
            from django_generic_tasks.backends.django_tasks import DjangoTasksBackend

            with conf.override_backend(DjangoTasksBackend(alias="db")):
                yield log
    finally:
        if previous is None:
            os.environ.pop("TASKS_TEST_STORE", None)
        else:
            os.environ["TASKS_TEST_STORE"] = previous
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def test_db_worker_runs_the_task_and_the_handle_reads_its_result(db_worker: Path) -> None:
    name = uuid.uuid4().hex
    handle = RecordTask({"token": name}).start()
    wait_until(lambda: handle.refresh().status.is_finished)
    assert (handle.status, handle.result) == (TaskStatus.SUCCEEDED, name)
    assert [what for _, what in events(name)] == ["ran"]


def test_db_worker_retries_follow_the_task_policy(db_worker: Path) -> None:
    name = uuid.uuid4().hex
    handle = FlakyRecordTask({"token": name, "failures": 2}).start()
    wait_until(lambda: handle.refresh().status.is_finished)
    assert (handle.status, handle.attempts) == (TaskStatus.SUCCEEDED, 3)
    assert [what for _, what in events(name)] == ["attempt"] * 3 + ["succeeded"]


def test_db_worker_honours_the_delay(db_worker: Path) -> None:
    name = uuid.uuid4().hex
    started = time.time()
    handle = RecordTask({"token": name}).start(delay=timedelta(seconds=1))
    assert handle.status is TaskStatus.SCHEDULED
    [(ran_at, _)] = wait_until(lambda: events(name))
    assert ran_at >= started + 1
