"""The retry seam: the one function that settles how an attempt ended.

``execution.execute()`` decides (an ``Outcome``: final, or ``SCHEDULED`` with ``retry_at``);
``settle()`` carries the decision out through two hooks that a backend supplies (a
``RunSink``): ``record(request, outcome)`` keeps what happened, and ``requeue(request)`` sends
the same run again as attempt ``request.attempt``, due at ``request.run_after``. No backend
re-enqueues by itself. (The database worker settles whole batches in SQL through the run
store, and a push queue's HTTP endpoint answers 500 so that the queue redelivers.)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from .status import TaskStatus

if TYPE_CHECKING:
    from .enqueue import EnqueueRequest
    from .execution import Outcome

__all__ = ["REFUSED_RETRY_DELAY", "RunSink", "defer", "final", "settle"]

logger = logging.getLogger("django_generic_tasks")
_SCHEDULED = TaskStatus.SCHEDULED

REFUSED_RETRY_DELAY = timedelta(seconds=5)
"""How long a run waits when this process refused to start it (``CapacityExceededError``)."""


class RunSink(Protocol):
    """The two things a backend does with an attempt's outcome."""

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Keep ``outcome`` of ``request``'s attempt (final, or ``SCHEDULED`` for a retry)."""
        ...

    def requeue(self, request: EnqueueRequest) -> None:
        """Send the run again: attempt ``request.attempt``, due at ``request.run_after``."""
        ...


def settle(sink: RunSink, request: EnqueueRequest, outcome: Outcome) -> EnqueueRequest | None:
    """Record ``outcome`` and, when the task's policy wants another attempt, requeue it.

    Returns the requeued request (``None`` when the run ended). A retry that cannot be
    requeued (the sink raises) ends the run ``FAILED`` with the task's own error, logged.
    """
    if outcome.status is not _SCHEDULED:
        sink.record(request, outcome)
        return None
    retry = request.next_attempt(outcome.retry_at)
    sink.record(request, outcome)
    try:
        sink.requeue(retry)
    except Exception:
        logger.exception(
            "Task %s (run %s): attempt %d could not be requeued; the run fails.",
            request.task_name,
            request.run_id,
            retry.attempt,
            extra={"task_name": request.task_name, "run_id": request.run_id},
        )
        sink.record(request, final(outcome))
        return None
    return retry


def final(outcome: Outcome) -> Outcome:
    """``outcome`` as a final one: a wanted retry becomes ``FAILED``."""
    if outcome.status is not _SCHEDULED:
        return outcome
    return replace(outcome, status=TaskStatus.FAILED, retry_at=None)


def defer(sink: RunSink, request: EnqueueRequest, reason: BaseException) -> EnqueueRequest:
    """Requeue the same attempt ``REFUSED_RETRY_DELAY`` later: it did not run because this
    process refused it (``reason``, e.g. ``CapacityExceededError``); no attempt is used up."""
    later = replace(request, run_after=datetime.now(UTC) + REFUSED_RETRY_DELAY)
    logger.warning(
        "Task %s (run %s) attempt %d was not started (%s); it is requeued for %s.",
        request.task_name,
        request.run_id,
        request.attempt,
        reason,
        later.run_after.isoformat() if later.run_after else "now",
        extra={"task_name": request.task_name, "run_id": request.run_id},
    )
    sink.requeue(later)
    return later
