"""One attempt's values: the request a backend hands to ``execute()``, the retry policy's
``Decision`` and the ``Outcome`` that carries both how the attempt ended and that decision.

The retry policy is the one owner of "will this run be attempted again?": the attempt's own
ending (``Outcome.status``: succeeded, failed, discarded, cancelled) and the policy's decision
(``Outcome.decision``: retry at T, or final) are kept apart. Backends apply the decision through
``retry.settle()`` (or, on the database worker, a batched write that decides nothing).
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..core.registry import registry
from ..core.status import ErrorInfo, TaskStatus
from ..exceptions import (
    AttemptInterrupted,
    ModelNotFoundError,
    RetryAfter,
    TaskCancelled,
    WorkerLost,
)
from ..support.dberrors import is_connection_lost

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..core.enqueue import EnqueueRequest
    from ..core.task import Task

__all__ = [
    "FINAL",
    "Attempt",
    "Decision",
    "Outcome",
    "RetryPolicy",
    "TaskAttributesPolicy",
    "error_info",
    "failed",
    "lost_worker_decision",
    "requeue_lost_connections",
    "retry_after_decision",
    "retry_policy_of",
    "run_info",
]

logger = logging.getLogger("django_generic_tasks")
_tuple_new = tuple.__new__


class _AttemptFields(NamedTuple):
    task_name: str
    params: str | bytes | dict[str, Any] | BaseModel
    run_id: str
    attempt: int
    max_attempts: int | None
    queue: str
    backend: str
    trace_context: str | None
    waiting_since: datetime | str | None
    trace_link: str | None


class Attempt(_AttemptFields):
    """One attempt of a run, as a backend (or the HTTP endpoint) hands it to ``execute()``: a
    frozen value, built with keywords only.

    ``params`` is the run's params as JSON (or a dict / model). ``max_attempts`` ``None``
    means the task's own. ``queue`` (default: the task's) and ``backend`` (the name of what
    runs it) are shown to the task as ``self.context``. ``trace_context`` (the run's W3C
    ``traceparent``, the attempt span's parent) and ``waiting_since`` (when the run became due)
    feed tracing and metrics; ``trace_link`` is a ``traceparent`` the span only links to (a
    caller not trusted to choose the trace).
    """

    # A named tuple: frozen and built by one C call, on the path of every attempt (a frozen
    # dataclass's __init__ sets each field through object.__setattr__, ~2 µs).
    __slots__ = ()

    def __new__(
        cls,
        *,
        task_name: str,
        params: str | bytes | dict[str, Any] | BaseModel,
        run_id: str,
        attempt: int = 1,
        max_attempts: int | None = None,
        queue: str = "",
        backend: str = "",
        trace_context: str | None = None,
        waiting_since: datetime | str | None = None,
        trace_link: str | None = None,
    ) -> Attempt:
        """Build an attempt; keywords only."""
        return _tuple_new(
            cls,
            (
                task_name,
                params,
                run_id,
                attempt,
                max_attempts,
                queue,
                backend,
                trace_context,
                waiting_since,
                trace_link,
            ),
        )

    @staticmethod  # not a classmethod: no bound method to build on every attempt
    def of(request: EnqueueRequest, backend: str) -> Attempt:
        """The attempt ``request`` describes, run by the backend named ``backend``."""
        return _tuple_new(
            Attempt,
            (
                request.task_name,
                request.params_json,
                request.run_id,
                request.attempt,
                request.max_attempts,
                request.queue,
                backend,
                request.trace_context,
                request.run_after,
                None,
            ),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What the retry policy decided after an attempt: another attempt due at ``retry_at``
    (``retry`` true; ``retry_at`` ``None``: at once), or none (``FINAL``). ``snooze``: the
    attempt does not count against ``max_attempts`` (the run's budget grows by one: a
    ``RetryAfter(counts_as_attempt=False)``)."""

    retry: bool = False
    retry_at: datetime | None = None
    snooze: bool = False

    @classmethod
    def retry_on(cls, at: datetime) -> Decision:
        """Another attempt, due at ``at``."""
        return cls(True, at)


FINAL = Decision()
"""The run ends with this attempt."""

_AT_ONCE = Decision(True)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~0.7 µs per run (hot path)
class Outcome:
    """How one attempt of a run ended (a value: treat it as read-only).

    ``status`` is how the attempt itself ended: ``SUCCEEDED``, ``FAILED``, ``DISCARDED`` or
    ``CANCELLED``. ``decision`` is the retry policy's: ``FINAL``, or a retry at
    ``decision.retry_at``. ``run_status`` is what the run becomes (``SCHEDULED`` for a retry).
    """

    run_id: str
    task_name: str
    attempt: int
    max_attempts: int
    status: TaskStatus
    result: Any = None
    error: ErrorInfo | None = None
    decision: Decision = FINAL

    @property
    def will_retry(self) -> bool:
        """Whether the retry policy asks for another attempt."""
        return self.decision.retry

    @property
    def retry_at(self) -> datetime | None:
        """When the next attempt is due (``None``: no retry)."""
        return self.decision.retry_at

    @property
    def run_status(self) -> TaskStatus:
        """The run's status after this attempt: ``SCHEDULED`` when it is retried."""
        return TaskStatus.SCHEDULED if self.decision.retry else self.status


class RetryPolicy(Protocol):
    """Decides whether a failed attempt is attempted again, and when.

    A task names one with its ``retry_policy`` attribute; by default its attributes decide
    (``TaskAttributesPolicy``: ``retry_on``, ``max_attempts`` and the ``backoff_*`` options).
    """

    def decide(
        self, task_class: type[Task[Any]], attempt: int, max_attempts: int, error: BaseException
    ) -> Decision:
        """The decision after attempt ``attempt`` of ``max_attempts`` failed with ``error``."""
        ...


class TaskAttributesPolicy:
    """The default policy: retry ``retry_on`` errors while attempts remain, after
    ``task_class.backoff(attempt)``; an attempt whose worker was lost (``WorkerLost``, not the
    task's own failure) is tried again at once while attempts remain."""

    def decide(
        self, task_class: type[Task[Any]], attempt: int, max_attempts: int, error: BaseException
    ) -> Decision:
        """Retry at now + backoff when ``error`` is a ``retry_on`` one and attempts remain."""
        if isinstance(error, WorkerLost):
            return self.decide_lost(attempt, max_attempts)
        if isinstance(error, RetryAfter):
            return retry_after_decision(error, attempt, max_attempts)
        if attempt < max_attempts and isinstance(error, task_class.retry_on):
            return Decision(True, datetime.now(UTC) + task_class.backoff(attempt))
        return FINAL

    def decide_lost(self, attempt: int, max_attempts: int) -> Decision:
        """After a lost worker: again at once (no ``retry_at``) while attempts remain."""
        return _AT_ONCE if attempt < max_attempts else FINAL


_DEFAULT_POLICY = TaskAttributesPolicy()


def retry_after_decision(error: RetryAfter, attempt: int, max_attempts: int) -> Decision:
    """The decision a ``RetryAfter`` asks for: again at ``error.retry_at``; a snooze
    (``counts_as_attempt`` false) always, else while attempts remain. For custom policies to
    call too."""
    if not error.counts_as_attempt:
        return Decision(True, error.retry_at, snooze=True)
    if attempt < max_attempts:
        return Decision(True, error.retry_at)
    return FINAL


def retry_policy_of(task_class: type[Task[Any]]) -> RetryPolicy:
    """The retry policy ``task_class`` names (``retry_policy``), else its attributes'."""
    policy: RetryPolicy | None = getattr(task_class, "retry_policy", None)
    return _DEFAULT_POLICY if policy is None else policy


def lost_worker_decision(
    task_name: str, attempt: int, max_attempts: int, *, lost_limit: int
) -> Decision:
    """The retry policy's decision for attempt ``attempt`` of a run whose worker was lost
    (``WorkerLost``), as the lease reaper asks it.

    A lost worker is not the task's failure, so the run may lose it ``lost_limit`` times
    beyond its ``max_attempts`` (the policy sees ``max_attempts + lost_limit``); a run that
    reaches that probably kills its worker, and the policy's ``FINAL`` fails it. A task this
    process does not know gets the default policy's answer.
    """
    limit = max_attempts + lost_limit
    if task_name not in registry:
        return _DEFAULT_POLICY.decide_lost(attempt, limit)
    task_class = registry.get(task_name)
    error = WorkerLost(f"The worker running attempt {attempt} of this run was lost.")
    return retry_policy_of(task_class).decide(task_class, attempt, limit, error)


def run_info(task: Task[Any]) -> tuple[str, int, int]:
    """``(run_id, attempt, max_attempts)`` of the attempt ``task`` is running."""
    context = task.__dict__["_run_context"]  # the Attempt execute() set (a RunContext once built)
    return context.run_id, context.attempt, context.max_attempts or type(task).max_attempts


def error_info(exc: BaseException) -> ErrorInfo:
    """Describe ``exc`` as an ``ErrorInfo`` (qualified type name, message, traceback)."""
    exc_type = type(exc)
    return ErrorInfo(
        type=f"{exc_type.__module__}.{exc_type.__qualname__}",
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )


_thread = threading.local()


def requeue_lost_connections(enabled: bool = True) -> None:
    """In this thread, a lost database connection (``dberrors.is_connection_lost``) raised by
    a task raises ``AttemptInterrupted`` instead of ending the attempt: no outcome, no hook,
    the caller puts the attempt back (the database worker's threads turn this on)."""
    _thread.requeue = enabled


def failed(task: Task[Any], exc: Exception) -> Outcome:
    """The outcome of an attempt of ``task`` that raised ``exc``: cancelled, discarded, or
    failed with the retry policy's decision; logged. ``AttemptInterrupted`` is raised instead
    when ``exc`` is a lost connection on a thread that requeues them."""
    if isinstance(exc, AttemptInterrupted):  # a step boundary of a stopping worker
        raise exc
    task_class = type(task)
    run_id, attempt, limit = run_info(task)
    extra = {"task_name": task_class.name, "run_id": run_id, "attempt": attempt}
    if isinstance(exc, TaskCancelled):  # check_cancelled(): the run ends, never retried
        logger.info(
            "Task %s (run %s) cancelled on attempt %d",
            task_class.name,
            run_id,
            attempt,
            extra=extra,
        )
        return _outcome(task_class, run_id, attempt, limit, TaskStatus.CANCELLED, exc)
    if getattr(_thread, "requeue", False) and is_connection_lost(exc):
        raise AttemptInterrupted(f"The database connection was lost: {exc}") from exc
    if isinstance(exc, task_class.discard_on) or (
        type(exc) is ModelNotFoundError and not task_class.missing_models_fail
    ):
        logger.info(
            "Task %s (run %s) discarded on attempt %d: %s",
            task_class.name,
            run_id,
            attempt,
            exc,
            extra=extra,
        )
        return _outcome(task_class, run_id, attempt, limit, TaskStatus.DISCARDED, exc)
    decision = retry_policy_of(task_class).decide(task_class, attempt, limit, exc)
    if decision.retry and isinstance(exc, RetryAfter):  # asked for: not a failure to trace
        logger.info(
            "Task %s (run %s) attempt %d asked to be retried at %s%s",
            task_class.name,
            run_id,
            attempt,
            decision.retry_at.isoformat() if decision.retry_at else "once",
            "" if decision.snooze else " (counted as an attempt)",
            extra=extra,
        )
    elif decision.retry:
        logger.warning(
            "Task %s (run %s) failed on attempt %d of %d; retrying at %s",
            task_class.name,
            run_id,
            attempt,
            limit,
            decision.retry_at.isoformat() if decision.retry_at else "once",
            exc_info=exc,
            extra=extra,
        )
    else:
        logger.error(
            "Task %s (run %s) failed on attempt %d of %d",
            task_class.name,
            run_id,
            attempt,
            limit,
            exc_info=exc,
            extra=extra,
        )
    return _outcome(task_class, run_id, attempt, limit, TaskStatus.FAILED, exc, decision)


def _outcome(
    task_class: type[Task[Any]],
    run_id: str,
    attempt: int,
    limit: int,
    status: TaskStatus,
    exc: BaseException,
    decision: Decision = FINAL,
) -> Outcome:
    return Outcome(run_id, task_class.name, attempt, limit, status, None, error_info(exc), decision)
