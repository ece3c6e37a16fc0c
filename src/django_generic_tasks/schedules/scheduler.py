"""The scheduler loop: a heap of next fire times, slept on, fired through ``firing.fire()``.

Any number of schedulers may run (``manage.py tasks_scheduler`` or ``tasks_worker
--scheduler``); the slot table makes each slot fire once. Missed slots (the process was down,
or the clock jumped forward) follow each schedule's ``catch_up``; a clock that jumps backward
rebuilds the heap from the new time (slots already fired stay fired: the table remembers).
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .firing import Fired, check_backend, fire, refire_abandoned, transactional

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..core.schedule import ScheduleEntry

logger = logging.getLogger("django_generic_tasks.schedules")

CATCH_UP_LIMIT = 100
"""``catch_up="all"`` fires at most this many missed slots of a schedule (the newest)."""
NONE_GRACE = timedelta(seconds=30)
"""``catch_up="none"`` still fires a slot this late (a busy or briefly paused scheduler)."""
MAX_SLEEP = 5.0
"""Longest sleep, seconds: how soon a wall-clock jump is noticed."""
JUMP = 1.0
"""Seconds of disagreement between the wall and monotonic clocks that count as a jump."""
RECOVERY_EVERY = 15.0
"""Seconds between looks for abandoned claims (non-transactional backends)."""
RETRY_AFTER = timedelta(seconds=1)
"""How soon a slot whose hand-over failed (database or broker down) is tried again."""
PRUNE_EVERY = timedelta(hours=1)
KEEP = timedelta(days=1)
"""Fired slots are kept this long (the newest of each schedule always)."""


def due_slots(entry: ScheduleEntry, after: datetime | None, now: datetime) -> list[datetime]:
    """The slots of ``entry`` to fire at ``now``, oldest first, by its ``catch_up`` policy.

    ``after`` is the newest slot already fired (``None``: never fired, start from ``now``).
    """
    if after is None:
        return []
    policy = entry.schedule.catch_up
    limit = CATCH_UP_LIMIT if policy == "all" else 1
    missed = entry.timing.slots_between(after, now, limit)
    if policy == "none":
        missed = [slot for slot in missed if now - slot <= NONE_GRACE]
    return sorted(missed)


class Scheduler:
    """Fires the slots of ``entries`` through ``backend``, claiming them in ``database``."""

    def __init__(
        self,
        entries: Sequence[ScheduleEntry],
        backend: Backend,
        database: str = "default",
        *,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        self.entries = {entry.id: entry for entry in entries}
        self.backend = backend
        self.database = database
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.fired: list[Fired] = []
        self._wall = wall or (lambda: datetime.now(UTC))
        self._heap: list[tuple[datetime, str]] = []
        self._after: dict[str, datetime | None] = {}
        self._stop = threading.Event()
        self._pruned: dict[str, datetime] = {}

    def stop(self) -> None:
        """Ask ``run()`` to return."""
        self._stop.set()

    def start(self) -> None:
        """Load the newest fired slot of each schedule and fill the heap."""
        from ..store.slots import using

        check_backend(self.entries, self.backend)
        latest = using(self.database).latest(self.entries)
        now = self._wall()
        self._after = {i: (s.slot_at if (s := latest.get(i)) else None) for i in self.entries}
        self._fill(now)
        logger.info("Scheduler %s started with %d schedule(s)", self.owner, len(self.entries))

    def _fill(self, now: datetime) -> None:
        self._heap = []
        for schedule_id, entry in self.entries.items():
            after = self._after[schedule_id]
            pending = due_slots(entry, after, now)
            first = pending[0] if pending else entry.timing.next_after(now)
            self._heap.append((first, schedule_id))
        heapq.heapify(self._heap)

    def tick(self, now: datetime | None = None) -> list[Fired]:
        """Fire everything due at ``now``; return what this scheduler fired."""
        now = now or self._wall()
        fired: list[Fired] = []
        while self._heap and self._heap[0][0] <= now:
            slot_at, schedule_id = heapq.heappop(self._heap)
            entry = self.entries[schedule_id]
            after = self._after[schedule_id]
            base = after if after is not None else slot_at - timedelta(microseconds=1)
            failed = False
            for slot in due_slots(entry, base, now):
                try:
                    done = fire(entry, slot, self.backend, self.database, self.owner)
                except Exception as exc:
                    logger.exception("Schedule %s: slot %s not fired yet", schedule_id, slot)
                    if _is_db_error(exc):
                        _reset_connection(self.database)
                    if self._after[schedule_id] is None:  # keep the failed slot due
                        self._after[schedule_id] = slot - timedelta(microseconds=1)
                    failed = True
                    break
                self._after[schedule_id] = slot
                if done is not None:
                    fired.append(done)
                    self._prune(schedule_id, slot)
            if failed:
                heapq.heappush(self._heap, (now + RETRY_AFTER, schedule_id))
                continue
            newest = self._after[schedule_id]
            self._after[schedule_id] = slot_at if newest is None else max(newest, slot_at)
            heapq.heappush(self._heap, (entry.timing.next_after(now), schedule_id))
        self.fired.extend(fired)
        return fired

    def _prune(self, schedule_id: str, slot: datetime) -> None:
        last = self._pruned.get(schedule_id)
        if last is not None and slot - last < PRUNE_EVERY:
            return
        from ..store.slots import using

        self._pruned[schedule_id] = slot
        using(self.database).prune(schedule_id, min(slot, self._wall() - KEEP))

    def recover(self) -> list[Fired]:
        """Fire claims abandoned by dead schedulers (see ``firing.refire_abandoned()``)."""
        found = refire_abandoned(self.entries, self.backend, self.database, self.owner)
        self.fired.extend(found)
        return found

    def run(self) -> None:
        """Fire slots until ``stop()``; sleeps until the next one, waking for clock jumps."""
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self.start()
                break
            except Exception as exc:
                if not _is_db_error(exc):
                    raise
                logger.warning("Database unavailable (%s); retrying in %.1fs", exc, backoff)
                _reset_connection(self.database)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        if self._stop.is_set():
            return
        wall0, mono0 = self._wall(), time.monotonic()
        recover_at = 0.0
        needs_recovery = not transactional(self.backend, self.database)
        while not self._stop.is_set():
            now, mono = self._wall(), time.monotonic()
            drift = (now - wall0).total_seconds() - (mono - mono0)
            if drift < -JUMP:
                logger.warning("Wall clock jumped back %.1fs; re-planning", -drift)
                self._after = {k: (min(v, now) if v else v) for k, v in self._after.items()}
                self._fill(now)
            elif drift > JUMP:
                logger.warning("Wall clock jumped forward %.1fs", drift)
            wall0, mono0 = now, mono
            try:
                self.tick(now)
                if needs_recovery and mono >= recover_at:
                    recover_at = mono + RECOVERY_EVERY
                    self.recover()
            except Exception:
                logger.exception("Scheduler error; retrying")
                _reset_connection(self.database)
                self._stop.wait(1.0)
                continue
            wait = MAX_SLEEP
            if self._heap:
                wait = min(wait, (self._heap[0][0] - self._wall()).total_seconds())
            if wait > 0:
                self._stop.wait(wait)
        _close_connection(self.database)
        logger.info("Scheduler %s stopped", self.owner)


def _is_db_error(exc: BaseException) -> bool:
    from django.db import DatabaseError, InterfaceError

    return isinstance(exc, DatabaseError | InterfaceError)


def _reset_connection(database: str) -> None:
    from django.db import connections

    try:
        connections[database].close()
    except Exception:
        logger.debug("closing the connection failed", exc_info=True)


def _close_connection(database: str) -> None:
    _reset_connection(database)
