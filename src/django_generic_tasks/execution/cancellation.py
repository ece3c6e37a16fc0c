"""Cooperative cancel: which runs of this process were asked to stop.

The database worker's heartbeat (and listener) marks runs whose cancel was requested in the
store, and ``watch()``es its backend while it runs; a timed-out attempt is marked on the task.
``Task.cancel_requested`` / ``check_cancelled()`` read the mark; the cancellation middleware
clears it when the attempt ends.
"""

from __future__ import annotations

from collections import Counter

from ..middleware import forget_chains

__all__ = [
    "CancelRequests",
    "clear",
    "delivered_to",
    "is_requested",
    "request",
    "requests",
    "stop_watching",
    "watch",
]


class CancelRequests:
    """Which runs of this process were asked to stop, and which backends' cancel requests
    reach this process (their workers listen for them)."""

    def __init__(self) -> None:
        self._requested: set[str] = set()
        self._watched: Counter[str] = Counter()

    def watch(self, backend: str) -> None:
        """Cancel requests for runs of backend name ``backend`` reach this process (its
        worker listens for them): their attempts get the cancellation middleware."""
        self._watched[backend] += 1
        forget_chains()

    def stop_watching(self, backend: str) -> None:
        """Undo one ``watch(backend)``."""
        self._watched[backend] -= 1
        if self._watched[backend] <= 0:
            del self._watched[backend]
            forget_chains()

    def delivered_to(self, backend: str) -> bool:
        """Whether cancel requests for runs of ``backend`` reach this process."""
        return self._watched[backend] > 0

    def request(self, run_id: str) -> None:
        """Ask the attempt of ``run_id`` running in this process to stop."""
        self._requested.add(run_id)

    def is_requested(self, run_id: str) -> bool:
        """Whether ``run_id`` was asked to stop."""
        return run_id in self._requested

    def clear(self, run_id: str) -> None:
        """Forget the request for ``run_id`` (its attempt ended)."""
        if self._requested:  # the common case: nothing was ever asked
            self._requested.discard(run_id)


requests = CancelRequests()
"""This process's cancel requests (the cancellation middleware is given it when its chains are
built; the functions below are its methods)."""

watch = requests.watch
stop_watching = requests.stop_watching
delivered_to = requests.delivered_to
request = requests.request
is_requested = requests.is_requested
clear = requests.clear
