"""Helpers for testing code that starts tasks.

>>> with capture_tasks() as captured:
...     EmailNotificationTask(params).start()
...     captured.assert_started(EmailNotificationTask, params=params)
...     captured.run_all()          # like Active Job's perform_enqueued_jobs

With pytest, the ``captured_tasks`` fixture does the same (it is registered as a pytest plugin
when this package is installed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from .backends.memory import InMemoryBackend
from .conf import override_backend
from .execution import Outcome
from .params import validate_params
from .registry import get_task_class
from .task import Task

__all__ = ["StartedTask", "TaskCapture", "capture_tasks", "captured_tasks"]


@dataclass(frozen=True)
class StartedTask:
    """One captured ``start()``: the task class, its params and the options it was given."""

    task_class: type[Task[Any]]
    params: BaseModel
    run_id: str
    queue: str
    priority: int
    run_after: datetime | None
    key: str | None


class TaskCapture:
    """What ``capture_tasks()`` yields: the captured starts, assertions, and ``run_all()``."""

    def __init__(self, backend: InMemoryBackend | None = None) -> None:
        self.backend = backend or InMemoryBackend()

    def started(self, task_class: type[Task[Any]] | None = None) -> list[StartedTask]:
        """Captured starts not yet run, optionally only those of ``task_class``."""
        found = []
        for request in self.backend.pending():
            cls = get_task_class(request.task_name)
            if task_class is not None and cls is not task_class:
                continue
            found.append(
                StartedTask(
                    task_class=cls,
                    params=cls.params_model.model_validate_json(request.params_json),
                    run_id=request.run_id,
                    queue=request.queue,
                    priority=request.priority,
                    run_after=request.run_after,
                    key=request.key,
                )
            )
        return found

    def assert_started(
        self,
        task_class: type[Task[Any]],
        params: BaseModel | Mapping[str, Any] | None = None,
        *,
        count: int | None = None,
        **options: Any,
    ) -> list[StartedTask]:
        """Assert that ``task_class`` was started (with ``params`` and ``options`` if given).

        ``count`` asserts how many matching starts there were; otherwise at least one.
        Options are compared with ``StartedTask`` fields: ``queue``, ``priority``, ``key``...
        """
        expected = None if params is None else validate_params(task_class.params_model, params)
        candidates = self.started(task_class)
        matches = [
            s
            for s in candidates
            if (expected is None or s.params == expected)
            and all(getattr(s, name) == value for name, value in options.items())
        ]
        wanted = f"{task_class.name}" + (f" with params {expected!r}" if expected else "")
        if options:
            wanted += f" and options {options!r}"
        if count is None and not matches:
            seen = "\n  ".join(repr(s.params) for s in candidates) or "(none)"
            raise AssertionError(
                f"Expected {wanted} to be started; started {task_class.name} runs:\n  {seen}"
            )
        if count is not None and len(matches) != count:
            raise AssertionError(
                f"Expected {wanted} to be started {count} time(s); it was {len(matches)} time(s)."
            )
        return matches

    def assert_not_started(self, task_class: type[Task[Any]] | None = None) -> None:
        """Assert that no task (or no ``task_class`` task) was started."""
        started = self.started(task_class)
        if started:
            names = ", ".join(s.task_class.name for s in started)
            raise AssertionError(f"Expected no task to be started; started: {names}")

    def run_all(self, *, retries: bool = True) -> list[Outcome]:
        """Run every captured start, and starts those runs make, until none is left."""
        return self.backend.run_all(retries=retries)

    def clear(self) -> None:
        """Forget every captured start."""
        self.backend.clear()

    def __len__(self) -> int:
        return len(self.backend.pending())


@contextmanager
def capture_tasks() -> Iterator[TaskCapture]:
    """Capture every ``start()`` in the block instead of sending it to ``TASKS_BACKEND``."""
    capture = TaskCapture()
    with override_backend(capture.backend):
        yield capture


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional for users
    pass
else:

    @pytest.fixture
    def captured_tasks() -> Iterator[TaskCapture]:
        """Pytest fixture: a ``TaskCapture`` active for the whole test."""
        with capture_tasks() as capture:
            yield capture
