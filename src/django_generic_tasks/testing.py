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
from contextlib import contextmanager, suppress
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

    def describe(self) -> str:
        """The params and the options that differ from the task's defaults, for messages."""
        options = {
            "queue": self.queue if self.queue != self.task_class.queue else None,
            "priority": self.priority if self.priority != self.task_class.priority else None,
            "run_after": self.run_after,
            "key": self.key,
        }
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items() if v is not None)
        return repr(self.params) + (f" ({shown})" if shown else "")


_OPTION_FIELDS = frozenset({"queue", "priority", "run_after", "key", "run_id"})


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
        Options are compared with ``StartedTask`` fields: ``queue``, ``priority``, ``key``,
        ``run_after``. Returns the matching starts.
        """
        unknown = sorted(set(options) - _OPTION_FIELDS)
        if unknown:
            raise TypeError(
                f"assert_started() got unknown option(s) {', '.join(unknown)}; "
                f"compare with: {', '.join(sorted(_OPTION_FIELDS))}."
            )
        expected = None if params is None else validate_params(task_class.params_model, params)
        candidates = self.started(task_class)
        matches = [
            s
            for s in candidates
            if (expected is None or s.params == expected)
            and all(getattr(s, name) == value for name, value in options.items())
        ]
        if (count is None and matches) or (count is not None and len(matches) == count):
            return matches
        wanted = task_class.name
        if expected is not None:
            wanted += f" with params {expected!r}"
        if options:
            wanted += f" and options {options!r}"
        seen = "\n  ".join(s.describe() for s in candidates) or "(none)"
        times = "" if count is None else f" {count} time(s); it was started {len(matches)} time(s)"
        raise AssertionError(
            f"Expected {wanted} to be started{times}. Captured {task_class.name} starts:\n  {seen}"
        )

    def assert_not_started(self, task_class: type[Task[Any]] | None = None) -> None:
        """Assert that no task (or no ``task_class`` task) was started."""
        started = self.started(task_class)
        if started:
            which = "no task" if task_class is None else f"no {task_class.name}"
            seen = "\n  ".join(f"{s.task_class.name} {s.describe()}" for s in started)
            raise AssertionError(f"Expected {which} to be started; started:\n  {seen}")

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


with suppress(ImportError):  # pytest is optional for users
    from django_generic_tasks_pytest import captured_tasks
