"""The one path that runs a task, used by every backend and by the HTTP endpoint.

look up the task by name -> validate its params from JSON -> run it (sync or async, with its
timeout) -> apply the retry policy -> report an ``Outcome`` -> signals and logging.
Recording the outcome (a row, an HTTP status) is the caller's job: ``execute()`` never raises
for a task's failure.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import traceback
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from . import observability, timeouts
from .dberrors import is_connection_lost
from .exceptions import (
    AttemptInterrupted,
    InvalidResultError,
    TaskCancelled,
    UnknownTaskError,
)
from .modelref import ModelNotFoundError, resolve_model_refs
from .params import validate_params
from .registry import get_task_class
from .results import result_type_name
from .signals import task_finished, task_started
from .status import ErrorInfo, TaskStatus

if TYPE_CHECKING:
    from .task import Task

logger = logging.getLogger("django_generic_tasks")
_DEBUG = logging.DEBUG


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~0.7 µs per run (hot path)
class Outcome:
    """How one attempt of a run ended (a value: treat it as read-only).

    ``status`` is ``SUCCEEDED``, ``FAILED`` (final), ``DISCARDED``, or ``SCHEDULED`` when the
    attempt failed and the task's policy wants another attempt at ``retry_at``.
    """

    run_id: str
    task_name: str
    attempt: int
    max_attempts: int
    status: TaskStatus
    result: Any = None
    error: ErrorInfo | None = None
    retry_at: datetime | None = None

    @property
    def will_retry(self) -> bool:
        """Whether the task's policy asks for another attempt."""
        return self.status is TaskStatus.SCHEDULED


def execute(
    task_name: str,
    params: str | bytes | dict[str, Any] | BaseModel,
    *,
    run_id: str,
    attempt: int = 1,
    max_attempts: int | None = None,
    queue: str = "",
    backend: str = "",
    trace_context: str | None = None,
    waiting_since: datetime | str | None = None,
    trace_link: str | None = None,
) -> Outcome:
    """Run attempt ``attempt`` of task ``task_name`` with ``params`` and report the outcome.

    ``queue`` (default: the task's) and ``backend`` (the name of what runs it) are shown to the
    task as ``self.context`` with the run id and attempts. ``trace_context`` (the run's W3C
    ``traceparent``, the attempt span's parent) and ``waiting_since`` (when the run became
    due) feed OpenTelemetry's spans and metrics, when a provider is configured
    (``observability``); ``trace_link`` is a ``traceparent`` the span only links to (a caller
    not trusted to choose the trace).

    An unknown task name or params that no longer validate end the run as ``FAILED`` with no
    retry (retrying cannot fix them). ``CapacityExceededError`` is raised, before the task
    runs, when this process has too many timed-out runs still running (see
    ``TASKS_MAX_ABANDONED_THREADS``): the attempt did not happen, so it is not an outcome.
    """
    if (
        observability.maybe
        and trace_context is not observability.IN_SPAN
        and observability.active()
    ):
        from .observability import tracing

        return tracing.consume(
            execute, task_name, params, run_id, attempt, max_attempts, queue, backend,
            trace_context, waiting_since, trace_link,
        )  # fmt: skip
    try:
        task_class = get_task_class(task_name)
    except UnknownTaskError as exc:
        return _poisoned(task_name, run_id, attempt, max_attempts or attempt, exc)
    limit = max_attempts or task_class.max_attempts
    try:
        task = task_class(validate_params(task_class.params_model, params))
    except (ValidationError, TypeError) as exc:
        return _poisoned(task_name, run_id, attempt, limit, exc, task_class)
    return _execute_task(task, run_id, attempt, limit, queue, backend)


def execute_task(
    task: Task[Any],
    *,
    run_id: str,
    attempt: int = 1,
    max_attempts: int | None = None,
    queue: str = "",
    backend: str = "",
) -> Outcome:
    """Run one attempt of an already-built task and apply its retry policy."""
    limit = max_attempts or type(task).max_attempts
    return _execute_task(task, run_id, attempt, limit, queue, backend)


def _execute_task(
    task: Task[Any], run_id: str, attempt: int, limit: int, queue: str, backend: str
) -> Outcome:
    task_class = type(task)
    # ``Task.context`` builds the RunContext from this on first use (most runs never ask).
    task._run_context = (run_id, attempt, limit, queue, backend)  # type: ignore[assignment]
    if task_class.timeout is not None and timeouts.abandoned and not _is_async(task_class):
        timeouts.refuse_when_over_capacity(task_class)  # CapacityExceededError: nothing ran
    if task_started.receivers:
        task_started.send(sender=task_class, task=task, run_id=run_id, attempt=attempt)
    debug = logger.isEnabledFor(_DEBUG)
    if debug:
        logger.debug("Task %s (run %s) attempt %d started", task_class.name, run_id, attempt)
    try:
        if task_class._has_model_refs:  # decided at class definition: plain tasks skip it
            resolve_model_refs(task.params)
        if _ASYNC_RUN.get(task_class) is False and task_class.timeout is None:
            result = task.run()  # _call()'s plain sync case, inlined: the hot path
            if result is not None and inspect.isawaitable(result):
                result = _run_coroutine(_awaited(result))
        else:
            result = _call(task)
    except TaskCancelled as exc:  # check_cancelled(): the run ends cancelled, never retried
        outcome = _failure(task_class, run_id, attempt, limit, exc, TaskStatus.CANCELLED)
        logger.info(
            "Task %s (run %s) cancelled on attempt %d",
            task_class.name,
            run_id,
            attempt,
            extra={"task_name": task_class.name, "run_id": run_id, "attempt": attempt},
        )
    except task_class.discard_on as exc:
        _raise_if_interrupted(exc)
        outcome = _discarded(task_class, run_id, attempt, limit, exc)
    except Exception as exc:
        _raise_if_interrupted(exc)
        if type(exc) is ModelNotFoundError and not task_class.missing_models_fail:
            outcome = _discarded(task_class, run_id, attempt, limit, exc)
        elif isinstance(exc, task_class.retry_on) and attempt < limit:
            outcome = _failure(task_class, run_id, attempt, limit, exc, TaskStatus.SCHEDULED)
            logger.warning(
                "Task %s (run %s) failed on attempt %d of %d; retrying at %s",
                task_class.name,
                run_id,
                attempt,
                limit,
                outcome.retry_at.isoformat() if outcome.retry_at else "once",
                exc_info=exc,
                extra={"task_name": task_class.name, "run_id": run_id, "attempt": attempt},
            )
        else:
            outcome = _failure(task_class, run_id, attempt, limit, exc, TaskStatus.FAILED)
            logger.error(
                "Task %s (run %s) failed on attempt %d of %d",
                task_class.name,
                run_id,
                attempt,
                limit,
                exc_info=exc,
                extra={"task_name": task_class.name, "run_id": run_id, "attempt": attempt},
            )
    else:
        outcome = Outcome(run_id, task_class.name, attempt, limit, TaskStatus.SUCCEEDED, result)
        if task_class._result_adapter is not None:  # ``Task[P, R]``: the result must be an R
            outcome = checked_outcome(task_class, outcome)
        if debug and outcome.status is TaskStatus.SUCCEEDED:
            logger.debug(
                "Task %s (run %s) succeeded on attempt %d", task_class.name, run_id, attempt
            )
    if task_class._has_hooks:
        _run_hook(task, outcome)
    if task_finished.receivers:
        task_finished.send(sender=task_class, task=task, outcome=outcome)
    return outcome


_thread = threading.local()


def requeue_lost_connections(enabled: bool = True) -> None:
    """In this thread, a lost database connection (``dberrors.is_connection_lost``) raised by
    a task raises ``AttemptInterrupted`` instead of ending the attempt: no outcome, no hook,
    the caller puts the attempt back (the database worker's threads turn this on)."""
    _thread.requeue = enabled


def _raise_if_interrupted(exc: BaseException) -> None:
    if getattr(_thread, "requeue", False) and is_connection_lost(exc):
        raise AttemptInterrupted(f"The database connection was lost: {exc}") from exc


def _discarded(
    task_class: type[Task[Any]], run_id: str, attempt: int, limit: int, exc: BaseException
) -> Outcome:
    outcome = _failure(task_class, run_id, attempt, limit, exc, TaskStatus.DISCARDED)
    logger.info(
        "Task %s (run %s) discarded on attempt %d: %s",
        task_class.name,
        run_id,
        attempt,
        exc,
        extra={"task_name": task_class.name, "run_id": run_id, "attempt": attempt},
    )
    return outcome


def _run_hook(task: Task[Any], outcome: Outcome) -> None:
    """Call the lifecycle hook of ``outcome`` on ``task``; log (never raise) its exception."""
    status, error = outcome.status, outcome.error
    args: tuple[Any, ...]
    if status is TaskStatus.SUCCEEDED:
        hook, args = "on_success", (outcome.result,)
    elif error is None or status is TaskStatus.CANCELLED:
        return
    elif status is TaskStatus.SCHEDULED:
        hook, args = "on_retry", (error, outcome.retry_at)
    elif status is TaskStatus.DISCARDED:
        hook, args = "on_discard", (error,)
    else:
        hook, args = "on_failure", (error,)
    try:
        result = getattr(task, hook)(*args)
        if result is not None and inspect.isawaitable(result):
            _run_coroutine(_awaited(result))
    except Exception:
        logger.exception(
            "Task %s (run %s): %s raised after attempt %d; the run's outcome stays %s.",
            outcome.task_name,
            outcome.run_id,
            hook,
            outcome.attempt,
            status,
            extra={"task_name": outcome.task_name, "run_id": outcome.run_id},
        )


def error_info(exc: BaseException) -> ErrorInfo:
    """Describe ``exc`` as an ``ErrorInfo`` (qualified type name, message, traceback)."""
    exc_type = type(exc)
    return ErrorInfo(
        type=f"{exc_type.__module__}.{exc_type.__qualname__}",
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )


def _failure(
    task_class: type[Task[Any]],
    run_id: str,
    attempt: int,
    limit: int,
    exc: BaseException,
    status: TaskStatus,
) -> Outcome:
    retry_at = (
        datetime.now(UTC) + task_class.backoff(attempt) if status is TaskStatus.SCHEDULED else None
    )
    return Outcome(run_id, task_class.name, attempt, limit, status, None, error_info(exc), retry_at)


def _poisoned(
    task_name: str,
    run_id: str,
    attempt: int,
    limit: int,
    exc: BaseException,
    task_class: type[Task[Any]] | None = None,
) -> Outcome:
    logger.error(
        "Task %s (run %s) cannot run: %s",
        task_name,
        run_id,
        exc,
        extra={"task_name": task_name, "run_id": run_id, "attempt": attempt},
    )
    outcome = Outcome(run_id, task_name, attempt, limit, TaskStatus.FAILED, None, error_info(exc))
    if task_finished.receivers:
        task_finished.send(sender=task_class, task=None, outcome=outcome)
    return outcome


def _call(task: Task[Any]) -> Any:
    task_class = type(task)
    timeout = task_class.timeout
    if _is_async(task_class):
        return _run_coroutine(timeouts.with_timeout(task.run(), timeout))  # type: ignore[arg-type]  # async run()
    if timeout is None:
        result = task.run()
        if result is not None and inspect.isawaitable(result):
            return _run_coroutine(_awaited(result))
        return result
    return timeouts.run_in_thread_with_timeout(task, timeout)


_ASYNC_RUN: dict[type[Any], bool] = {}


def _is_async(task_class: type[Task[Any]]) -> bool:
    is_async = _ASYNC_RUN.get(task_class)
    if is_async is None:
        is_async = _ASYNC_RUN[task_class] = inspect.iscoroutinefunction(task_class.run)
    return is_async


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running event loop (e.g. an async view): run on a fresh thread.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="django-generic-tasks-async")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def checked_outcome(task_class: type[Task[Any, Any]], outcome: Outcome) -> Outcome:
    """``outcome`` of a successful attempt, its result validated against the task's result
    type; an invalid result turns it into a final failure (no retry: the code is wrong)."""
    adapter = task_class._result_adapter
    if adapter is None:
        return outcome
    try:
        outcome.result = adapter.validate_python(outcome.result)
    except ValidationError as exc:
        error = InvalidResultError(
            f"{task_class.name} returned a value that is not a valid "
            f"{result_type_name(task_class.result_type)}: {exc}"
        )
        logger.error(
            "Task %s (run %s) returned an invalid result on attempt %d; the run fails "
            "without retry",
            task_class.name,
            outcome.run_id,
            outcome.attempt,
            exc_info=error,
            extra={"task_name": task_class.name, "run_id": outcome.run_id},
        )
        outcome.status, outcome.result, outcome.error = TaskStatus.FAILED, None, error_info(error)
    return outcome
