"""The worker's heartbeat thread: extends the leases of the runs it holds, requeues runs whose
worker died, keeps the worker's heartbeat row (the dashboard's live workers) and samples the
queues' depth once a minute."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from ..execution.attempts import lost_worker_decision
from ..execution.cancellation import request as request_cancel
from ..store import RunStore, WorkerInfo, using
from ..store.rows import Reclaimed
from .connection import close_quietly

if TYPE_CHECKING:
    from .runner import Worker

logger = logging.getLogger("django_generic_tasks.worker")

COUNT_EVERY = 1.0
"""At most this often (seconds), the heartbeat row is rewritten between beats when the worker
has finished runs since: "runs done" on the dashboard and in ``tasks_status``."""
SAMPLE_EVERY = 60.0
"""Seconds between two samples of the queues' depth and lag (the dashboard's history)."""


class Heartbeat(threading.Thread):
    """Beats every ``lease / 3`` seconds on its own connection until the worker halts."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(name="tasks-worker-heartbeat", daemon=True)
        self.worker = worker

    def run(self) -> None:
        """Beat, reap and sample until the worker's halt event is set."""
        from django.db import connections

        worker, options = self.worker, self.worker.options
        beat = options.lease / 3
        reap_every = max(options.lease / 2, 0.5)
        next_beat = time.monotonic() + beat
        next_reap = time.monotonic() + min(reap_every, 1.0)
        next_sample = 0.0
        next_count = 0.0
        counted = worker.processed  # before the beat reads it: a run finished meanwhile counts
        lost = partial(lost_worker_decision, lost_limit=options.lost_limit)  # the retry policy
        self.beat(using(options.database), datetime.now(UTC))
        while not worker._halt.wait(min(beat, reap_every, 1.0) / 2):
            try:
                runs = using(options.database)
                now = datetime.now(UTC)
                with worker._lock:
                    # Outcomes and given-back runs not yet written still hold their lease.
                    busy = worker._in_flight > 0 or worker._async_in_flight > 0
                    busy = busy or worker._outcomes.waiting()
                due = time.monotonic() >= next_beat
                if due:
                    next_beat = time.monotonic() + beat
                    if busy:
                        runs.queue.extend_leases(worker.id, options.lease, now)
                        for run_id in runs.queue.cancel_requested(worker.id):
                            request_cancel(run_id)
                # The row's run count is what the dashboard shows: kept at most a second
                # behind, without waiting for the next beat.
                if due or (worker.processed != counted and time.monotonic() >= next_count):
                    next_count = time.monotonic() + COUNT_EVERY
                    processed = worker.processed
                    if self.beat(runs, now):  # else tried again on the next turn
                        counted = processed
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + SAMPLE_EVERY
                    runs.observations.sample_queues(now)
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + reap_every
                    reclaimed = runs.queue.reclaim_expired(lost, now)
                    for run in reclaimed:
                        log_reclaimed(run)
                    if reclaimed:
                        worker._wake.set()
            except Exception as exc:
                logger.warning("Heartbeat failed: %s", exc)
                close_quietly(options.database)
        connections.close_all()

    def beat(self, runs: RunStore, now: datetime) -> bool:
        """Tell the dashboard this worker is alive (its heartbeat row); whether it was
        written."""
        worker, options = self.worker, self.worker.options
        try:
            runs.workers.beat(
                WorkerInfo(
                    worker.id,
                    socket.gethostname(),
                    os.getpid(),
                    options.queues,
                    options.concurrency,
                    worker.processed,
                    worker.started_at,
                    options.exclude_queues,
                ),
                options.lease,
                now,
            )
        except Exception as exc:  # the dashboard's view of workers is not worth a crash
            logger.warning("Writing the worker heartbeat failed: %s", exc)
            close_quietly(options.database)
            return False
        return True


def log_reclaimed(run: Reclaimed) -> None:
    """One WARNING per run whose worker stopped heartbeating, once, by the reaper that took
    it back."""
    logger.warning(
        "Task %s (run %s) lost its worker on attempt %d (lease expired %.1fs ago): %s",
        run.task_name,
        run.id,
        run.attempt,
        run.expired_for,
        _BECAME[run.became],
        extra={"task_name": run.task_name, "run_id": run.id, "attempt": run.attempt},
    )


_BECAME = {
    "requeued": "requeued as a new attempt",
    "cancelled": "its cancel was requested, so it ends cancelled",
    "failed": "it lost its worker too often, so it is given up",
}
