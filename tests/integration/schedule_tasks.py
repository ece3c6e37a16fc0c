"""A periodic task for the scheduler process tests (imported through ``TASKS_TEST_IMPORT``).

It fires every second and appends its run id and process id (``run@pid``) to the file named
by ``CHAOS_LOG``, so the test
counts task bodies per slot even across SIGKILLs. Processes use ``DatabaseBackend``.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.signals import task_started

settings.TASKS_BACKEND = "django_generic_tasks.backends.DatabaseBackend"
current = threading.local()


def _remember_run_id(run_id: str, **kwargs: Any) -> None:
    current.run_id = run_id


task_started.connect(_remember_run_id)


class TickParams(BaseModel):
    label: str


class Tick(tasks.Task[TickParams]):
    """Records its run id."""

    name = "tests.tick"
    schedules = [tasks.Schedule(every=timedelta(seconds=1), params={"label": "tick"}, name="1s")]

    def run(self) -> None:
        fd = os.open(os.environ["CHAOS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{current.run_id}@{os.getpid()}\n".encode())
        finally:
            os.close(fd)
