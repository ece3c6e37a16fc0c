"""Rows in and out: a new run's row, a claimed run, and an outcome's row (each written once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from ..status import TaskStatus
from .schema import check_lengths, db_id, table
from .statuses import waiting_status

if TYPE_CHECKING:
    from ..enqueue import EnqueueRequest
    from ..execution import Outcome

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
    """The values ``item``'s outcome stores: a retry waits, anything else is final."""
    outcome = item.outcome
    error = outcome.error
    retry = outcome.status in (TaskStatus.SCHEDULED, TaskStatus.READY)
    status = waiting_status(outcome.retry_at, item.at) if retry else outcome.status
    return OutcomeRow(
        status=status.value,
        result=outcome.result if outcome.status is TaskStatus.SUCCEEDED else None,
        error_type=error.type if error else "",
        error_message=error.message if error else "",
        error_traceback=error.traceback if error else "",
        finished_at=None if retry else item.at,
        run_after=outcome.retry_at if retry else None,
    )
