"""Concurrency and rate limits kept in this process, for the backends that run attempts here
(``ThreadingBackend``, ``ImmediateBackend``, ``InMemoryBackend``: ``concurrency_limits =
"process"``). ``DatabaseBackend`` keeps them in its claim instead (``store.flow``).

``Slots`` counts the running runs per concurrency key and parks the callbacks of runs that
found no free slot: the first parked run is handed back when a slot frees (no polling).
``Rates`` keeps one GCRA "theoretical arrival time" per rate key and reserves each run the
first moment it may start.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Rates", "Slots", "enforce_in_process", "in_process", "rates", "slots"]

_in_process: set[str] = set()


def enforce_in_process(backend: str) -> None:
    """Declare that the backend named ``backend`` runs attempts of limited tasks in this
    process, so their attempt chains honour the limits here."""
    _in_process.add(backend)


def in_process(backend: str) -> bool:
    """Whether the attempts of ``backend`` honour limits in this process."""
    return backend in _in_process


class Slots:
    """Running runs per concurrency key, in this process; parked runs wait for a slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._parked: dict[str, deque[Callable[[], None]]] = {}

    def acquire(self, key: str, limit: int) -> bool:
        """Take a slot of ``key`` when fewer than ``limit`` are taken."""
        with self._lock:
            running = self._running.get(key, 0)
            if running >= limit:
                return False
            self._running[key] = running + 1
            return True

    def park(self, key: str, limit: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` when a slot of ``key`` frees (at once if one is free now)."""
        with self._lock:
            if self._running.get(key, 0) >= limit:
                self._parked.setdefault(key, deque()).append(callback)
                return
        callback()

    def release(self, key: str) -> None:
        """Give a slot of ``key`` back and hand it to the first parked run, if any."""
        with self._lock:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
            parked = self._parked.get(key)
            callback = parked.popleft() if parked else None
            if parked is not None and not parked:
                del self._parked[key]
        if callback is not None:
            callback()

    def running(self, key: str) -> int:
        """Slots of ``key`` taken now."""
        with self._lock:
            return self._running.get(key, 0)


class Rates:
    """One GCRA per rate key: runs start at most ``count`` per ``period``, evenly spaced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}  # key -> the earliest start of the next run (epoch)
        self._reserved: dict[str, float] = {}  # run id -> the start it was given

    def reserve(self, key: str, interval: float, run_id: str) -> float:
        """Seconds until run ``run_id`` may start (0: now); a run given a later start keeps
        it (it is not charged again when it comes back then)."""
        now = time.time()
        with self._lock:
            at = self._reserved.get(run_id)
            if at is None:
                at = max(now, self._next.get(key, 0.0))
                self._next[key] = at + interval
            if at <= now + 0.001:
                self._reserved.pop(run_id, None)
                return 0.0
            self._reserved[run_id] = at
            return at - now

    def take(self, key: str, interval: float) -> float:
        """Take ``key``'s turn when it is due now (0.0), else the seconds until it is, without
        reserving it (a caller that does not wait for it takes nothing)."""
        now = time.time()
        with self._lock:
            at = self._next.get(key, 0.0)
            if at > now + 0.001:
                return at - now
            self._next[key] = max(at, now) + interval
            return 0.0


slots = Slots()
"""This process's concurrency slots."""
rates = Rates()
"""This process's rate limits."""
