"""The retry seam: the one function that settles how an attempt ended.

The task's retry policy decides (``Outcome.decision``: final, or a retry at ``retry_at``,
apart from ``Outcome.status``, how the attempt itself ended); ``settle()`` carries the decision
out through two hooks that a backend supplies (a ``RunSink``): ``record(request, outcome)``
keeps what happened, and ``requeue(request)`` sends the same run again as attempt
``request.attempt``, due at ``request.run_after``. No backend re-enqueues by itself. (The
database worker writes whole batches of outcomes in SQL through the run store, which applies
the decision and decides nothing; a push queue's HTTP endpoint maps the decision to its answer,
``api.schemas.http_status``.)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Protocol

from ..exceptions import FlowDeferred
from .attempts import FINAL

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from .attempts import Outcome

__all__ = ["REFUSED_RETRY_DELAY", "RunSink", "defer", "final", "settle"]

logger = logging.getLogger("django_generic_tasks")

REFUSED_RETRY_DELAY = timedelta(seconds=5)
"""How long a run waits when this process refused to start it (``CapacityExceededError``)."""


class RunSink(Protocol):
    """The two things a backend does with an attempt's outcome."""

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Keep ``outcome`` of ``request``'s attempt (``outcome.run_status``: what the run
        becomes, ``SCHEDULED`` when ``outcome.decision`` is a retry)."""
        ...

    def requeue(self, request: EnqueueRequest) -> None:
        """Send the run again: attempt ``request.attempt``, due at ``request.run_after``."""
        ...


def settle(sink: RunSink, request: EnqueueRequest, outcome: Outcome) -> EnqueueRequest | None:
    """Record ``outcome`` and, when the task's policy wants another attempt, requeue it.

    Returns the requeued request (``None`` when the run ended). A retry that cannot be
    requeued (the sink raises) ends the run ``FAILED`` with the task's own error, logged.
    A run that ended and belongs to an in-process workflow (``request.workflow``) tells it,
    which starts what follows (the database worker does the same in its outcomes'
    transaction: ``store.workflows``).
    """
    decision = outcome.decision
    if not decision.retry:
        sink.record(request, outcome)
        if request.workflow is not None:  # what follows in its workflow starts now
            request.workflow.ended(request, outcome)
        return None
    retry = request.next_attempt(decision.retry_at, snooze=decision.snooze)
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
        settle(sink, request, final(outcome))
        return None
    return retry


def final(outcome: Outcome) -> Outcome:
    """``outcome`` with a ``FINAL`` decision: a wanted retry is not made."""
    if not outcome.decision.retry:
        return outcome
    return replace(outcome, decision=FINAL)


def defer(sink: RunSink, request: EnqueueRequest, reason: BaseException) -> EnqueueRequest:
    """Requeue the same attempt ``REFUSED_RETRY_DELAY`` later: it did not run because this
    process refused it (``reason``, e.g. ``CapacityExceededError``); no attempt is used up.

    A ``FlowDeferred`` (a concurrency or rate limit) is put back exactly when it may run: due
    at its ``until``, or parked until its slot frees (never polled)."""
    if isinstance(reason, FlowDeferred):
        if reason.park is not None:
            reason.park(partial(sink.requeue, replace(request, run_after=None)))
            return request
        if reason.until is not None:
            later = replace(request, run_after=reason.until)
            sink.requeue(later)
            return later
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
