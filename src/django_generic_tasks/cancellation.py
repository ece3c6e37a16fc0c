"""Cooperative cancel: which runs of this process were asked to stop.

The database worker's heartbeat marks runs whose cancel was requested in the store; a timed-out
attempt is marked by the execution path. ``Task.cancel_requested`` / ``check_cancelled()`` read
the mark; the worker clears it when the attempt ends.
"""

from __future__ import annotations

__all__ = ["clear", "is_requested", "request"]

_requested: set[str] = set()


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
