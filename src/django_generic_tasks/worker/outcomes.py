"""What a worker's threads leave for its main loop to write: outcomes, runs put back, and the
rollups of both, written in batches by ``OutcomeWriter.flush``."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from ..core.status import TaskStatus
from ..execution import Outcome, error_info
from ..store import ClaimedRun, Finished, RunQueue
from ..store.rollups import Rollup, merge, rollups
from .connection import is_connection_error, is_db_error, queue_of

logger = logging.getLogger("django_generic_tasks.worker")

ROLLUP_EVERY = 1.0
"""Seconds between two writes of the rollups of the outcomes written meanwhile."""


class OutcomeWriter:
    """The outcomes a worker's threads produced, the runs they put back and the outcomes they
    wrote themselves (the slot hand-off), kept until the main loop's ``flush`` writes them:
    outcomes in one statement, with the rollups riding along about once a second.

    The threads add under the worker's ``lock``; ``flush`` runs on the main loop only."""

    def __init__(self, database: str, worker_id: str, lock: threading.Lock) -> None:
        self.database = database
        self.worker_id = worker_id
        self.lock = lock
        self.pending: list[tuple[ClaimedRun, Outcome, float]] = []
        self.written: list[Finished] = []
        self.given_back: list[tuple[ClaimedRun, datetime]] = []
        self._rollups: list[Rollup] = []
        self._rollups_due = time.monotonic() + ROLLUP_EVERY

    def waiting(self) -> bool:
        """Whether outcomes or runs put back wait to be written."""
        return bool(self.pending or self.given_back)

    def flush(self, final: bool = False) -> int:
        """Write what waits (``final``: the rollups too, whenever due); return how many
        outcomes it wrote. A lost connection keeps them for the next call and raises."""
        if self.given_back:
            self._give_back()
        with self.lock:
            written, self.written = self.written, []
            pending, self.pending = self.pending, []
        if written:  # outcomes the threads wrote (``handoff``): only their rollups are left
            self._rollups = merge(self._rollups, rollups(written))
        flush_rollups = final or time.monotonic() >= self._rollups_due
        if not pending:
            if self._rollups and flush_rollups:
                self._write_rollups()
            return 0
        # A run's finished_at is when its outcome is written: what a status reader sees.
        now = datetime.now(UTC)
        items = [Finished(run, outcome, now, seconds) for run, outcome, seconds in pending]
        rows = rollups(items)
        # Rollups ride along with a batch of outcomes about once a second: the same
        # statement, but not every batch's cost (a crash loses at most that second's counts).
        attach = merge(self._rollups, rows) if flush_rollups else []
        runs = queue_of(self.database)
        try:
            runs.finish(self.worker_id, items, attach)
        except Exception as exc:
            if is_connection_error(exc) or not is_db_error(exc):
                with self.lock:
                    self.pending[:0] = pending
                raise
            logger.warning("Writing %d outcomes failed (%s); writing one by one", len(items), exc)
            for item in items:
                self._finish_one(runs, item)
        else:
            if flush_rollups:
                self._rollups = []
                self._rollups_due = time.monotonic() + ROLLUP_EVERY
            else:
                self._rollups = merge(self._rollups, rows)
        return len(items)

    def _give_back(self) -> None:
        """Write back the runs the threads put back; on a lost connection the rest stay for
        the next turn (the main loop reconnects meanwhile)."""
        with self.lock:
            given_back, self.given_back = self.given_back, []
        runs = queue_of(self.database)
        for number, (run, run_after) in enumerate(given_back):
            try:
                runs.postpone(self.worker_id, run, run_after)
            except Exception as exc:
                if is_connection_error(exc) or not is_db_error(exc):
                    with self.lock:
                        self.given_back[:0] = given_back[number:]
                    raise
                logger.exception("Run %s could not be put back; its lease will expire", run.id)

    def _write_rollups(self) -> None:
        try:
            queue_of(self.database).observations.write_rollups(self._rollups)
        except Exception as exc:
            if is_connection_error(exc) or not is_db_error(exc):
                raise  # kept: written once the database is back
            logger.warning(
                "Dropping %d rollup rows that cannot be written: %s", len(self._rollups), exc
            )
        self._rollups = []
        self._rollups_due = time.monotonic() + ROLLUP_EVERY

    def _finish_one(self, runs: RunQueue, item: Finished) -> None:
        try:
            runs.finish(self.worker_id, [item])
        except Exception as exc:
            if is_connection_error(exc) or not is_db_error(exc):
                raise
            logger.error("Run %s: its outcome cannot be stored: %s", item.run.id, exc)
            failure = Outcome(
                item.run.id,
                item.run.task_name,
                item.run.attempt,
                item.run.max_attempts,
                TaskStatus.FAILED,
                error=error_info(RuntimeError(f"The run's outcome could not be stored: {exc}")),
            )
            runs.finish(self.worker_id, [Finished(item.run, failure, item.at)])


__all__ = ["ROLLUP_EVERY", "OutcomeWriter"]
