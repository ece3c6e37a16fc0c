"""``DjangoTasksBackend``: runs typed tasks through any Django ``django.tasks`` backend.

Every run is enqueued as one module-level ``django.tasks`` task, ``run_generic_task``, whose
arguments are the task name, the params as JSON, the run id and the attempt numbers. Its body
calls ``execution.execute()``, the path every backend uses, and settles the outcome through the
retry seam: another attempt is the same task enqueued again with ``run_after`` and
``attempt + 1``. An attempt that is retried, or a run that succeeded, was discarded or
cancelled, returns the bridge's summary (``backends.bridge``); a run that failed for good
raises ``BridgedRunFailed``, so its ``django.tasks`` result is FAILED like any task's that
raised. ``django.tasks`` keeps only an exception's class path and traceback text: the
exception's message is the run's summary as one line of JSON, read back from the traceback's
last line, so the handle still gets the error as structured fields.

Uses ``django.tasks`` (Django >= 6.0) or, on Django 5.2, the ``django-tasks`` backport.
"""

from __future__ import annotations

import importlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.checks import CheckMessage, Error

from ..check_ids import CheckId
from ..core.enqueue import EnqueueRequest
from ..core.handles import TaskHandle
from ..core.status import ErrorInfo, TaskStatus
from ..exceptions import (
    CapacityExceededError,
    ConfigurationError,
    EnqueueError,
    MissingDependencyError,
    ResultNotAvailableError,
    RunFailedError,
    RunNotFoundError,
)
from ..execution import Attempt, execute
from ..execution.retry import defer, settle
from .base import BaseBackend
from .bridge import (
    BridgeSink,
    apply_summary,
    deferred_summary,
    error_fields,
    error_from_fields,
    read_summary,
)
from .immediate import asked_for, sleep_until


def _import_tasks_framework() -> Any:
    for name in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise MissingDependencyError(
        "DjangoTasksBackend needs django.tasks (Django >= 6.0) or, on Django 5.2, the backport: "
        "pip install django-tasks"
    )


dj_tasks: Any = _import_tasks_framework()
_base: Any = importlib.import_module(f"{dj_tasks.__name__}.base")
_exceptions: Any = importlib.import_module(f"{dj_tasks.__name__}.exceptions")
_InvalidTaskBackend: type[Exception] = getattr(
    _exceptions, "InvalidTaskBackend", getattr(_exceptions, "InvalidTaskBackendError", Exception)
)

_InvalidTask: type[Exception] = getattr(
    _exceptions, "InvalidTask", getattr(_exceptions, "InvalidTaskError", TypeError)
)
_DoesNotExist: type[Exception] = getattr(_exceptions, "TaskResultDoesNotExist", LookupError)


class BridgedRunFailed(RunFailedError):
    """Raised by ``run_generic_task`` when its run failed for good: the ``django.tasks``
    result is FAILED. ``str()`` is the run's summary as one line of JSON."""

    def __init__(self, summary: dict[str, Any]) -> None:
        error = error_from_fields(summary.get("error")) or ErrorInfo("", "")
        super().__init__(error.type, error.message, error.traceback, str(summary.get("task", "")))
        self.summary = summary

    def __str__(self) -> str:
        return json.dumps(self.summary, separators=(",", ":"))


_FAILED_PATH = f"{BridgedRunFailed.__module__}.{BridgedRunFailed.__qualname__}"

RESULT_IDS_KEPT = 10_000
"""How many run id -> result id pairs a backend remembers for ``get_result(run_id)``."""


def _run_generic_task(
    context: Any,
    task: str,
    params: str,
    run_id: str,
    attempt: int = 1,
    max_attempts: int | None = None,
    trace_context: str | None = None,
) -> dict[str, Any]:
    """Run one attempt of a typed task inside a ``django.tasks`` worker; return its summary.

    ``trace_context`` is the run's W3C ``traceparent`` (OpenTelemetry), when it has one."""
    request = EnqueueRequest(
        run_id, task, params, "", 0, None, None, max_attempts or 0, None, attempt, trace_context
    )
    sink = _DjangoTasksSink(context)
    try:
        outcome = execute(
            Attempt(
                task_name=task,
                params=params,
                run_id=run_id,
                attempt=attempt,
                max_attempts=max_attempts,
                queue=_queue_of(context),
                backend=DjangoTasksBackend.name,
                trace_context=trace_context,
            )
        )
    except CapacityExceededError as exc:  # refused before it ran: the same attempt, later
        defer(sink, request, exc)
        sink.summary = deferred_summary(request)
    else:
        request.max_attempts = outcome.max_attempts
        settle(sink, request, outcome)
    assert sink.summary is not None
    follow_up = sink.follow_up
    if follow_up is None:
        if sink.summary["status"] == str(TaskStatus.FAILED):
            raise BridgedRunFailed(sink.summary)
        return sink.summary
    follow_status = str(follow_up.status)
    if follow_status == "SUCCESSFUL":  # ran in-process (ImmediateBackend): report its end
        return dict(follow_up.return_value)
    if follow_status == "FAILED":  # it failed for good, or crashed outside the task's handling
        summary = _failure_summary(follow_up.errors[-1]) if follow_up.errors else None
        if summary is None:
            summary = dict(sink.summary, status=str(TaskStatus.FAILED))
            if follow_up.errors:
                summary["error"] = error_fields(_crash_info(follow_up.errors[-1]))
        raise BridgedRunFailed(summary)
    return dict(sink.summary, next=follow_up.id)


class _DjangoTasksSink(BridgeSink):
    """The retry-seam hooks inside ``run_generic_task``."""

    def __init__(self, context: Any) -> None:
        super().__init__()
        self.context = context
        self.follow_up: Any = None

    def requeue(self, request: EnqueueRequest) -> None:
        """Enqueue ``run_generic_task`` again for the next attempt (deferred if possible)."""
        current = self.context.task_result.task
        backend = dj_tasks.task_backends[current.backend]
        retry = current.using(run_after=request.run_after) if backend.supports_defer else current
        if not backend.supports_defer and self.outcome is not None and asked_for(self.outcome):
            sleep_until(request)  # RetryAfter: its time is waited for where it cannot wait
        self.follow_up = retry.enqueue(
            request.task_name,
            request.params_json,
            request.run_id,
            request.attempt,
            request.max_attempts or None,
            *((request.trace_context,) if request.trace_context else ()),
        )


_run_generic_task.__name__ = _run_generic_task.__qualname__ = "run_generic_task"
_task_object: Any = None


def __getattr__(name: str) -> Any:
    # The django.tasks Task object is built on first use, not at import, because building it
    # needs the TASKS setting; workers find it by its dotted path.
    global _task_object
    if name == "run_generic_task":
        if _task_object is None:
            _task_object = dj_tasks.task(takes_context=True)(_run_generic_task)
        return _task_object
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(slots=True, eq=False)
class DjangoTaskHandle(TaskHandle[Any]):
    """A ``TaskHandle`` that wraps the ``django.tasks`` ``TaskResult`` of the run.

    ``task_result`` is the result of the latest attempt known; ``refresh()`` follows retries.
    """

    task_result: Any = field(default=None, repr=False)

    def refresh(self) -> TaskHandle[Any]:
        """Reload from the ``TaskResult``, following retries to the latest attempt."""
        backend = self.backend
        if not isinstance(backend, DjangoTasksBackend) or self.task_result is None:
            return TaskHandle.refresh(self)
        if not backend.supports_results:
            return TaskHandle.refresh(self)  # raises ResultNotAvailableError
        backend.refresh(self)
        return self


class DjangoTasksBackend(BaseBackend):
    """Enqueues runs through the ``django.tasks`` backend ``TASKS[alias]``.

    Capability flags come from that backend: ``delay``/``eta`` need ``supports_defer``,
    ``priority`` needs ``supports_priority`` and ``refresh()`` needs ``supports_get_result``.
    Queues map to ``queue_name`` unchanged (they must be in the backend's ``QUEUES``).
    Deduplication by ``key`` is refused. Retries follow the task's policy; on a backend
    without ``supports_defer`` (``ImmediateBackend``) the backoff wait is skipped.
    """

    supports_key = False
    supports_retries = True
    crash_safe = None
    needs_server = "what the `TASKS` backend needs"
    capability_notes: ClassVar[dict[str, str]] = {
        "supports_defer": "if the `TASKS` backend does",
        "supports_priority": "if the `TASKS` backend does",
        "supports_results": "if the `TASKS` backend does",
        "enqueues_in_transaction": "in the transaction on django-tasks-db, else after commit",
        "crash_safe": "as the `TASKS` backend",
    }

    def __init__(self, *, alias: str = "default") -> None:
        if not isinstance(alias, str) or not alias:
            raise ConfigurationError("DjangoTasksBackend(alias=...) must be a TASKS alias.")
        self.alias = alias
        # run id -> django.tasks result id of its latest known attempt, so handles created
        # before commit (or by id) can be refreshed in this process.
        self._result_ids: OrderedDict[str, str] = OrderedDict()

    @property
    def enqueues_in_transaction(self) -> bool:  # type: ignore[override]
        """True on django-tasks-db: its rows are written in the caller's transaction."""
        return type(self.tasks_backend).__module__.startswith("django_tasks_db")

    @property
    def tasks_backend(self) -> Any:
        """The ``django.tasks`` backend of ``alias``."""
        try:
            return dj_tasks.task_backends[self.alias]
        except _InvalidTaskBackend as exc:
            raise ConfigurationError(
                f"DjangoTasksBackend(alias={self.alias!r}): no usable TASKS[{self.alias!r}] "
                f"backend: {exc}"
            ) from exc

    @property
    def supports_defer(self) -> bool:  # type: ignore[override]
        """Whether the ``django.tasks`` backend honours ``run_after``."""
        return bool(self.tasks_backend.supports_defer)

    @property
    def supports_priority(self) -> bool:  # type: ignore[override]
        """Whether the ``django.tasks`` backend orders by priority."""
        return bool(self.tasks_backend.supports_priority)

    @property
    def supports_results(self) -> bool:  # type: ignore[override]
        """Whether results can be read back from any process (``supports_get_result``)."""
        return bool(self.tasks_backend.supports_get_result)

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Enqueue one run through ``django.tasks``."""
        try:
            task = __getattr__("run_generic_task").using(
                backend=self.alias,
                queue_name=request.queue,
                priority=request.priority,
                run_after=request.run_after,
            )
            result = task.enqueue(
                request.task_name,
                request.params_json,
                request.run_id,
                request.attempt,
                request.max_attempts,
                *((request.trace_context,) if request.trace_context else ()),
            )
        except _InvalidTask as exc:
            raise EnqueueError(
                f"{type(self.tasks_backend).__name__} refused task {request.task_name} "
                f"(run {request.run_id}): {exc}"
            ) from exc
        handle = DjangoTaskHandle(
            id=request.run_id, name=request.task_name, status=TaskStatus.READY, backend=self
        )
        handle.task_result = result
        self._remember(request.run_id, result.id)
        _apply(handle, result, request.run_after is not None)
        return handle

    def _remember(self, run_id: str, result_id: str) -> None:
        self._result_ids[run_id] = result_id
        if len(self._result_ids) > RESULT_IDS_KEPT:
            self._result_ids.popitem(last=False)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Enqueue runs one by one (``django.tasks`` has no bulk enqueue)."""
        return [self.enqueue(request) for request in requests]

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """Look a run up by its run id (runs started by this process) or by its
        ``django.tasks`` result id (``handle.task_result.id``), from any process."""
        if not self.supports_results:
            return BaseBackend.get_result(self, run_id)
        result_id = self._result_ids.get(run_id, run_id)
        try:
            result = self.tasks_backend.get_result(result_id)
        except _DoesNotExist as exc:
            raise ResultNotAvailableError(f"No run or task result {run_id!r}.") from exc
        if not _is_ours(result):
            raise RunNotFoundError(f"No task run {run_id!r}.")
        handle = DjangoTaskHandle(id=run_id, name="", status=TaskStatus.READY, backend=self)
        handle.task_result = result
        _follow(handle, self.tasks_backend)
        self._remember(run_id, handle.task_result.id)
        return handle

    def refresh(self, handle: DjangoTaskHandle) -> None:
        """Reload ``handle`` from its ``TaskResult``, following retries to the latest attempt."""
        handle.task_result.refresh()
        _follow(handle, self.tasks_backend)
        self._remember(handle.id, handle.task_result.id)

    def check(self) -> list[CheckMessage]:
        """Report a missing or broken ``TASKS`` alias."""
        try:
            self.tasks_backend  # noqa: B018
        except ConfigurationError as exc:
            return [
                Error(
                    str(exc),
                    hint="Add the alias to the TASKS setting or set "
                    "TASKS_BACKEND_OPTIONS = {'alias': ...}.",
                    id=CheckId.DJANGO_TASKS_ALIAS_INVALID,
                )
            ]
        return []

    def __repr__(self) -> str:
        return f"<DjangoTasksBackend alias={self.alias!r}>"


def _queue_of(context: Any) -> str:
    """The queue of the ``django.tasks`` run behind ``context`` ("" when it does not say)."""
    queue = getattr(getattr(getattr(context, "task_result", None), "task", None), "queue_name", "")
    return queue if isinstance(queue, str) else ""


def _follow(handle: DjangoTaskHandle, backend: Any) -> None:
    """Walk from ``handle.task_result`` along retries to the latest attempt, then apply it."""
    result = handle.task_result
    for _ in range(1000):
        summary = _summary(result)
        next_id = summary.get("next") if summary is not None else None
        if not isinstance(next_id, str) or not next_id:
            break
        result = backend.get_result(next_id)
        if not _is_ours(result):
            break
    handle.task_result = result
    _apply(handle, result, False)


def _is_ours(result: Any) -> bool:
    """Whether a ``django.tasks`` result is one of ``run_generic_task``'s."""
    return getattr(getattr(result, "task", None), "func", None) is _run_generic_task


def _summary(result: Any) -> dict[str, Any] | None:
    if str(result.status) != "SUCCESSFUL":
        return None
    return read_summary(result.return_value)


def _apply(handle: TaskHandle[Any], result: Any, deferred: bool) -> None:
    status = str(result.status)
    if status == "SUCCESSFUL":
        summary = _summary(result)
        if summary is None:
            raise RunNotFoundError(f"No task run {handle.id!r}.")
        apply_summary(handle, summary)
    elif status == "FAILED":
        summary = _failure_summary(result.errors[-1]) if result.errors else None
        if summary is not None:  # the run failed for good: its summary, error as fields
            apply_summary(handle, summary)
            return
        handle.status = TaskStatus.FAILED
        handle.attempts = max(handle.attempts, len(result.worker_ids))
        if result.errors:
            handle.error = _crash_info(result.errors[-1])
    elif status == "RUNNING":
        handle.status = TaskStatus.RUNNING
    else:
        handle.status = TaskStatus.SCHEDULED if deferred else TaskStatus.READY


def _failure_summary(error: Any) -> dict[str, Any] | None:
    """The summary a ``BridgedRunFailed`` carried, from the last line of its traceback text
    (``None`` for any other error)."""
    if str(error.exception_class_path) != _FAILED_PATH:
        return None
    last = str(error.traceback).rstrip("\n").rsplit("\n", 1)[-1]
    prefix = f"{_FAILED_PATH}: "
    return read_summary(last[len(prefix) :]) if last.startswith(prefix) else None


def _crash_info(error: Any) -> ErrorInfo:
    """The error of a ``run_generic_task`` that raised (outside the task's error handling):
    ``django.tasks`` keeps the class path and the traceback text, shown as they are."""
    return ErrorInfo(
        type=str(error.exception_class_path), message="", traceback=str(error.traceback)
    )
