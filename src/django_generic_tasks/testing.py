"""Helpers for testing code that starts tasks.

>>> with capture_tasks() as captured:
...     EmailNotificationTask(params).start()
...     captured.assert_started(EmailNotificationTask, params=params)
...     captured.assert_started(EmailNotificationTask, params_subset={"subject": "Welcome"})
...     captured.run_all()          # like Active Job's perform_enqueued_jobs
...     captured.pending()          # [] : nothing left to run
...     captured.started()          # still the start above: started() keeps what ran

With pytest, the ``captured_tasks`` fixture does the same (it is registered as a pytest plugin
when this package is installed).

Transactions: a start is captured at once, even inside ``atomic()``, and dropped when the
atomic block it was made in (or one around it) rolls back, as ``DatabaseBackend`` loses the
row; a start inside a transaction that is still open, such as the one Django's ``TestCase``
wraps each test in, stays visible. See ``InMemoryBackend``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from .backends.memory import InMemoryBackend
from .conf import override_backend
from .core.enqueue import EnqueueRequest
from .core.params import validate_params
from .core.registry import get_task_class
from .core.task import Task
from .execution import Outcome

__all__ = [
    "StartedTask",
    "TaskCapture",
    "capture_tasks",
    "captured_tasks",
    "stop_wait_listeners",
]


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
        """Every captured start, before and after ``run_all()`` ran it, optionally only those
        of ``task_class`` (starts whose transaction rolled back are not among them; retries
        are not starts). ``assert_started()`` looks here."""
        return self._describe(self.backend.started(), task_class)

    def pending(self, task_class: type[Task[Any]] | None = None) -> list[StartedTask]:
        """The captured starts ``run_all()`` has not run yet (a run's pending retry is listed
        again), optionally only those of ``task_class``."""
        return self._describe(self.backend.pending(), task_class)

    def _describe(
        self, requests: list[EnqueueRequest], task_class: type[Task[Any]] | None
    ) -> list[StartedTask]:
        found = []
        for request in requests:
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
        params_subset: Mapping[str, Any] | None = None,
        count: int | None = None,
        **options: Any,
    ) -> list[StartedTask]:
        """Assert that ``task_class`` was started (with ``params`` and ``options`` if given).

        ``params`` must be the complete params (a model, or a dict that validates as one) and
        match exactly. ``params_subset`` instead names only some top-level fields (by name or
        alias); a start matches when each of them equals, after validation as that field, the
        start's value (other fields may hold anything). Pass one or the other.
        ``count`` asserts how many matching starts there were; otherwise at least one.
        Options are compared with ``StartedTask`` fields: ``queue``, ``priority``, ``key``,
        ``run_after``. Returns the matching starts; the ``AssertionError`` lists the captured
        starts of ``task_class`` with their params.
        """
        unknown = sorted(set(options) - _OPTION_FIELDS)
        if unknown:
            raise TypeError(
                f"assert_started() got unknown option(s) {', '.join(unknown)}; "
                f"compare with: {', '.join(sorted(_OPTION_FIELDS))}."
            )
        if params is not None and params_subset is not None:
            raise TypeError("Pass params (all fields) or params_subset (some fields), not both.")
        matches_params: Callable[[BaseModel], bool] = lambda _: True  # noqa: E731
        wanted = task_class.name
        if params is not None:
            expected = validate_params(task_class.params_model, params)
            matches_params = expected.__eq__
            wanted += f" with params {expected!r}"
        elif params_subset is not None:
            matches_params = _subset_matcher(task_class.params_model, params_subset)
            wanted += f" with params including {dict(params_subset)!r}"
        candidates = self.started(task_class)
        matches = [
            s
            for s in candidates
            if matches_params(s.params)
            and all(getattr(s, name) == value for name, value in options.items())
        ]
        if (count is None and matches) or (count is not None and len(matches) == count):
            return matches
        if options:
            wanted += f" and options {options!r}"
        seen = "\n  ".join(s.describe() for s in candidates) or "(none)"
        times = "" if count is None else f" {count} time(s); it was started {len(matches)} time(s)"
        raise AssertionError(
            f"Expected {wanted} to be started{times}. Captured {task_class.name} starts:\n"
            f"  {seen}{self._rolled_back_note(task_class)}"
        )

    def _rolled_back_note(self, task_class: type[Task[Any]] | None) -> str:
        dropped = [
            r
            for r in self.backend.rolled_back
            if task_class is None or r.task_name == task_class.name
        ]
        if not dropped:
            return ""
        return (
            f"\n({len(dropped)} more start(s) were dropped: the transaction they were made in "
            "rolled back.)"
        )

    def assert_not_started(self, task_class: type[Task[Any]] | None = None) -> None:
        """Assert that no task (or no ``task_class`` task) was started."""
        started = self.started(task_class)
        if started:
            which = "no task" if task_class is None else f"no {task_class.name}"
            seen = "\n  ".join(f"{s.task_class.name} {s.describe()}" for s in started)
            raise AssertionError(f"Expected {which} to be started; started:\n  {seen}")

    def run_all(self, *, retries: bool = True) -> list[Outcome]:
        """Run every captured start, and starts those runs make, until none is left (never one
        whose transaction rolled back)."""
        return self.backend.run_all(retries=retries)

    def clear(self) -> None:
        """Forget every captured start."""
        self.backend.clear()

    def __len__(self) -> int:
        """How many captured starts are still pending (``len(captured.pending())``)."""
        return len(self.backend.pending())


def _subset_matcher(
    model: type[BaseModel], subset: Mapping[str, Any]
) -> Callable[[BaseModel], bool]:
    """A test of params: do the fields named in ``subset`` hold its values (validated)?

    ``TypeError`` for a name that is no field, ``ValueError`` naming the field for a value
    that does not validate as it.
    """
    if not isinstance(subset, Mapping):
        raise TypeError(f"params_subset must be a mapping of field names, not {type(subset)}.")
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        names[name] = name
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.setdefault(alias, name)
    unknown = sorted(str(key) for key in subset if key not in names)
    if unknown:
        raise TypeError(
            f"params_subset names no field of {model.__name__}: {', '.join(unknown)}; "
            f"its fields: {', '.join(model.model_fields)}."
        )
    expected: dict[str, Any] = {}
    for key, value in subset.items():
        name = names[key]
        info = model.model_fields[name]
        field_type: Any = Annotated[info.annotation, info]  # the field's constraints too
        adapter: TypeAdapter[Any] = TypeAdapter(field_type)
        try:
            expected[name] = adapter.validate_python(value)
        except ValidationError as exc:
            problems = "; ".join(error["msg"] for error in exc.errors())
            raise ValueError(
                f"params_subset[{key!r}] is not a valid {model.__name__}.{name}: {problems}"
            ) from exc

    def matches(params: BaseModel) -> bool:
        return all(getattr(params, name) == value for name, value in expected.items())

    return matches


@contextmanager
def capture_tasks() -> Iterator[TaskCapture]:
    """Capture every ``start()`` in the block instead of sending it to ``TASKS_BACKEND``.

    A start inside ``atomic()`` is captured at once and dropped if that block (or one around
    it) rolls back; inside a transaction that stays open, such as a ``TestCase`` test's, it
    stays visible.
    """
    capture = TaskCapture()
    with override_backend(capture.backend):
        yield capture


def stop_wait_listeners() -> None:
    """Close the connections ``handle.wait()`` listens on (PostgreSQL; one per process and
    database, closed by themselves a few seconds after the last wait). PostgreSQL refuses to
    drop a database that a connection still uses: call this before the test database is
    dropped (the pytest plugin does it for pytest-django). The next ``wait()`` reopens them."""
    from .store.finish_notices import stop_listeners

    stop_listeners()


with suppress(ImportError):  # pytest is optional for users
    from django_generic_tasks_pytest import captured_tasks
