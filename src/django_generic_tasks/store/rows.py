"""Rows in and out: a new run's row, a claimed run, and an outcome's row (each written once)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from ..core.status import TaskStatus
from .schema import check_lengths, db_id, table
from .statuses import waiting_status

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from ..execution.attempts import Outcome

HISTORY_LIMIT = 10
"""Earlier attempts a run keeps in its ``history`` (the oldest go first)."""
HISTORY_ERROR_CHARS = 500
"""The start of an earlier attempt's error message that its history entry keeps."""
LOST_ERROR_TYPE = "django_generic_tasks.WorkerLost"
LOST_MESSAGE = (
    "The worker running this run stopped (killed, crashed or lost) too many times; "
    "the run was given up."
)


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run a worker holds a lease on."""

    id: str
    db_id: Any
    task_name: str
    params: Any
    attempt: int
    max_attempts: int
    priority: int
    queue: str = "default"
    trace_context: str | None = None
    """The W3C ``traceparent`` of the span that started the run."""
    run_after: Any = None
    """When the run became due, as the driver returns it (the queue-wait metric)."""


@dataclass(frozen=True, slots=True)
class Finished:
    """An outcome waiting to be written back."""

    run: ClaimedRun
    outcome: Outcome
    at: datetime
    seconds: float = 0.0
    """How long the attempt ran (the dashboard's durations)."""


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """A run whose lease expired, taken back by the reaper."""

    id: str
    db_id: Any
    task_name: str
    attempt: int
    """The attempt that lost its worker."""
    became: str
    """``requeued`` (a new attempt follows), ``cancelled`` (its cancel was requested) or
    ``failed`` (it lost its worker too often)."""
    expired_for: float
    """Seconds its lease had expired when it was reclaimed."""
    worker_id: str | None = None
    started_at: datetime | None = None

    def entry(self, now: datetime) -> str:
        """The lost attempt's history entry (JSON)."""
        entry = history_entry(
            self.attempt, self.worker_id, "lost", self.started_at, now, LOST_ERROR_TYPE
        )
        return to_json(entry).decode()


def new_row(connection: Any, request: EnqueueRequest, now: datetime) -> tuple[Any, ...]:
    """The row of a new run, in ``table().columns`` order; lengths checked first."""
    check_lengths(request.task_name, request.queue, request.key)
    adapt = connection.ops.adapt_datetimefield_value
    run_after = request.run_after
    return (  # NEW_RUN_COLUMNS, then the defaults of the other required columns
        db_id(connection, request.run_id),
        request.task_name,
        request.params_json,
        request.queue,
        request.priority,
        waiting_status(run_after, now).value,
        request.attempt - 1,
        request.max_attempts,
        request.timeout,
        adapt(run_after or now),
        adapt(now),
        request.key,
        request.trace_context or None,
        *table().defaults,
    )


def result_json(result: Any) -> str | None:
    """The JSON stored for a task's return value (``None`` stays SQL NULL)."""
    if result is None:
        return None
    return to_json(result, fallback=repr).decode()


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """What an outcome writes into its run's row (the one outcome -> row mapping)."""

    status: str
    result: Any
    error_type: str
    error_message: str
    error_traceback: str
    finished_at: datetime | None
    run_after: datetime | None
    """The next attempt's due time (retries only; ``None`` keeps the row's)."""


def outcome_row(item: Finished) -> OutcomeRow:
    """The values ``item``'s outcome stores: the policy's decision, carried out (a retry
    waits; anything else is final). Nothing is decided here."""
    outcome = item.outcome
    error = outcome.error
    decision = outcome.decision
    retry = decision.retry
    status = waiting_status(decision.retry_at, item.at) if retry else outcome.status
    return OutcomeRow(
        status=status.value,
        result=outcome.result if outcome.status is TaskStatus.SUCCEEDED else None,
        error_type=error.type if error else "",
        error_message=error.message if error else "",
        error_traceback=error.traceback if error else "",
        finished_at=None if retry else item.at,
        run_after=decision.retry_at if retry else None,
    )


OUTCOME_COLUMNS = (
    "status",
    "result",
    "error_type",
    "error_message",
    "error_traceback",
    "finished_at",
    "run_after",
)
"""The columns an outcome writes, in the order of ``outcome_values()``."""


def outcome_values(dt: Callable[[datetime | None], Any], item: Finished) -> list[Any]:
    """``item``'s ``OutcomeRow`` as bind values, datetimes through ``dt``: status, result
    (JSON), error type, message, traceback, finished_at, run_after (``OUTCOME_COLUMNS``:
    the order every finish statement binds them)."""
    row = outcome_row(item)
    return [
        row.status,
        result_json(row.result),
        row.error_type,
        row.error_message,
        row.error_traceback,
        dt(row.finished_at),
        dt(row.run_after),
    ]


def extra_attempts(item: Finished) -> int:
    """Attempts ``item``'s outcome adds to the run's ``max_attempts``: 1 for a snooze
    (``RetryAfter(counts_as_attempt=False)``: that attempt does not count), else 0."""
    return 1 if item.outcome.decision.snooze else 0


def history_entry(
    attempt: int,
    worker_id: str | None,
    outcome: str,
    started_at: datetime | None,
    ended_at: datetime,
    error_type: str = "",
    error_message: str = "",
) -> dict[str, Any]:
    """One earlier attempt, as ``TaskRun.history`` keeps it: when, where, how it ended."""
    return {
        "attempt": attempt,
        "started_at": started_at.isoformat() if started_at is not None else None,
        "ended_at": ended_at.isoformat(),
        "worker": worker_id or "",
        "outcome": outcome,
        "error_type": error_type,
        "error_message": error_message[:HISTORY_ERROR_CHARS],
    }


def retry_entry(item: Finished, worker_id: str) -> str | None:
    """``retry_record()`` as JSON."""
    record = retry_record(item, worker_id)
    return None if record is None else to_json(record).decode()


def retry_record(item: Finished, worker_id: str) -> dict[str, Any] | None:
    """The history entry of an attempt that ends in a retry, else ``None``: a run's last
    attempt is its row itself, so only attempts that a later one overwrites are kept."""
    outcome = item.outcome
    if not outcome.decision.retry:
        return None
    from datetime import timedelta

    error = outcome.error
    return history_entry(
        item.run.attempt,
        worker_id,
        "retried",
        item.at - timedelta(seconds=item.seconds),
        item.at,
        error.type if error else "",
        error.message if error else "",
    )
