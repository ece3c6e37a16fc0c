"""A freed concurrency slot handed on by the thread that freed it.

When a run of a task with a ``concurrency_limit`` ends on a worker thread, the slot it held is
free once its outcome is written. Left to the main loop, the next run of that key starts only
after two hand-offs between threads (the outcome to the main loop, the claimed run back to a
thread), each a wake-up that a busy machine delays. So the thread writes the outcome itself,
claims at once through the limits (one run: it has exactly one hand free) and runs what it
got; the main loop only adds the outcome to its rollups. After ``STREAK`` seconds of that,
the thread lets the slot go and every worker races for it. Only on PostgreSQL, whose claim
through the limits locks per key (``PostgreSQLRunQueue``); elsewhere, and with
``--max-tasks``, outcomes go to the main loop as before.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..core.registry import registry
from ..store import ClaimedRun, Finished, RunQueue

if TYPE_CHECKING:
    from ..execution import Outcome
    from .options import WorkerOptions

logger = logging.getLogger("django_generic_tasks.worker")

STREAK = 5.0
"""Seconds a thread hands its slot on to the next run of the key, run after run; then it
lets the slot go and wakes every worker to race for it, so a worker that holds every slot
of a busy key does not hold them for good (the other workers' runs of that key start too)."""


def hands_off(task_name: str) -> bool:
    """Whether a run of ``task_name`` held a concurrency slot (its task has a limit)."""
    if task_name not in registry.limited:  # the common case: no limits at all
        return False
    try:
        task_class = registry.get(task_name)
    except Exception:
        return False
    return getattr(task_class, "concurrency_limit", None) is not None


def finish_and_claim(
    runs: RunQueue,
    worker_id: str,
    options: WorkerOptions,
    run: ClaimedRun,
    outcome: Outcome,
    seconds: float,
    *,
    rated: bool,
) -> tuple[Finished | None, ClaimedRun | None]:
    """Write ``run``'s outcome and hand its slot on (``RunQueue.finish_and_claim_next``), on
    this thread's connection: ``(the outcome written, or None when the main loop is to write
    it; the run claimed, or None)``. On a database error the main loop writes the outcome
    (again, when it was: a second write of an outcome changes nothing)."""
    from django.db import Error

    item = Finished(run, outcome, datetime.now(UTC), seconds)
    try:
        claimed = runs.finish_and_claim_next(
            worker_id, item, options.queues, options.exclude_queues, options.lease, rated=rated
        )
    except Error as exc:
        logger.debug("Run %s: handing its slot on failed (%s)", run.id, exc)
        return None, None
    except Exception:  # a bug here must not end the thread: the main loop writes it
        logger.exception("Run %s: handing its slot on failed", run.id)
        return None, None
    return item, claimed


def finish_and_yield(
    runs: RunQueue, worker_id: str, run: ClaimedRun, outcome: Outcome, seconds: float
) -> Finished | None:
    """Write ``run``'s outcome, leaving its slot free, and wake every listening worker to
    race for it (the end of a streak: ``STREAK``); ``None`` on a database error (the main
    loop writes it)."""
    from django.db import Error

    from .notify import notify_workers

    item = Finished(run, outcome, datetime.now(UTC), seconds)
    try:
        runs.finish(worker_id, [item], [])
        notify_workers(runs.alias)
    except Error as exc:
        logger.debug("Run %s: writing its outcome on its thread failed (%s)", run.id, exc)
        return None
    return item


__all__ = ["STREAK", "finish_and_claim", "finish_and_yield", "hands_off"]
