"""Cooperative cancel: which runs of this process were asked to stop.

The database worker's heartbeat (and listener) marks runs whose cancel was requested in the
store, and ``watch()``es its backend while it runs; a timed-out attempt is marked on the task.
``Task.cancel_requested`` / ``check_cancelled()`` read the mark; the cancellation middleware
clears it when the attempt ends.
"""

from __future__ import annotations

from collections import Counter

from .middleware import forget_chains

__all__ = ["clear", "delivered_to", "is_requested", "request", "stop_watching", "watch"]

_requested: set[str] = set()
_watched: Counter[str] = Counter()


def watch(backend: str) -> None:
    """Cancel requests for runs of backend name ``backend`` reach this process (its worker
    listens for them): their attempts get the cancellation middleware."""
    _watched[backend] += 1
    forget_chains()


def stop_watching(backend: str) -> None:
    """Undo one ``watch(backend)``."""
    _watched[backend] -= 1
    if _watched[backend] <= 0:
        del _watched[backend]
        forget_chains()


def delivered_to(backend: str) -> bool:
    """Whether cancel requests for runs of ``backend`` reach this process."""
    return _watched[backend] > 0


def request(run_id: str) -> None:
    """Ask the attempt of ``run_id`` running in this process to stop."""
    _requested.add(run_id)


def is_requested(run_id: str) -> bool:
    """Whether ``run_id`` was asked to stop."""
    return run_id in _requested


def clear(run_id: str) -> None:
    """Forget the request for ``run_id`` (its attempt ended)."""
    if _requested:  # the common case: nothing was ever asked
        _requested.discard(run_id)
