"""Django ``@task`` functions on ``DatabaseTaskBackend`` (the ``dgt`` alias of tests/settings.py),
after the task functions of Django's own ``tests/tasks/tasks.py`` and django-tasks-db's tests.

Side effects go to the file ``CHAOS_LOG`` names, when set (the process tests read it).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from django.tasks import TaskContext, task

BACKEND = "dgt"


def _record(line: str) -> None:
    path = os.environ.get("CHAOS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


@task(backend=BACKEND)
def noop_task(*args: Any, **kwargs: Any) -> None:
    """Does nothing."""


@task(backend=BACKEND)
async def noop_task_async(*args: Any, **kwargs: Any) -> None:
    """Does nothing, asynchronously."""
    await asyncio.sleep(0)


@task(backend=BACKEND)
def calculate_meaning_of_life() -> int:
    """42."""
    return 42


@task(backend=BACKEND)
def add(a: int, b: int = 0) -> int:
    """``a + b``."""
    return a + b


@task(backend=BACKEND)
async def add_async(a: int, b: int = 0) -> int:
    """``a + b``, asynchronously."""
    await asyncio.sleep(0)
    return a + b


@task(backend=BACKEND)
def echo(value: Any) -> Any:
    """Returns its argument (a JSON round trip)."""
    return value


@task(backend=BACKEND)
def failing_task_value_error() -> None:
    """Raises ValueError."""
    raise ValueError("This Task failed due to ValueError")


@task(backend=BACKEND)
async def failing_task_async() -> None:
    """Raises ValueError, asynchronously."""
    raise ValueError("This async Task failed")


@task(backend=BACKEND)
def complex_exception() -> None:
    """Raises an exception holding an exception."""
    raise ValueError(ValueError("This task failed"))


@task(backend=BACKEND)
def complex_return_value() -> Any:
    """Returns something that has no JSON form (the run fails)."""
    return {"value": object()}


@task(backend=BACKEND)
def tuple_return_value() -> Any:
    """Returns a tuple (a list once stored)."""
    return (1, "two", {"three": [4.5, None, True]})


@task(backend=BACKEND, takes_context=True)
def get_task_id(context: TaskContext) -> str:
    """The id of its own result."""
    return context.task_result.id


@task(backend=BACKEND, takes_context=True)
def test_context(context: TaskContext, attempt: int) -> dict[str, Any]:
    """What the context says: the attempt number and the result's state."""
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt
    return {
        "attempt": context.attempt,
        "status": str(context.task_result.status),
        "id": context.task_result.id,
        "queue": context.task_result.task.queue_name,
        "priority": context.task_result.task.priority,
    }


@task(backend=BACKEND)
def record(token: str, sleep: float = 0.0) -> str:
    """Sleeps ``sleep`` seconds, then writes ``dj <token>`` to ``CHAOS_LOG``."""
    if sleep:
        time.sleep(sleep)
    _record(f"dj {token}")
    return token


@task(backend=BACKEND)
async def record_async(token: str, sleep: float = 0.0) -> str:
    """``record``, asynchronously."""
    if sleep:
        await asyncio.sleep(sleep)
    _record(f"dja {token}")
    return token


def not_a_task() -> None:
    """A plain function (a run naming it fails: it is not a Task)."""


@task(backend=BACKEND)
def failing_task_system_exit() -> None:
    """Raises SystemExit."""
    raise SystemExit("This Task failed due to SystemExit")
