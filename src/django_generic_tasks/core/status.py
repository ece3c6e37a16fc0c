"""Run identifiers, statuses, and the values a run's handle carries (errors, attempts)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TaskStatus(StrEnum):
    """Where a task run is in its life."""

    PENDING = "pending"
    """Waiting for the surrounding database transaction to commit."""
    SCHEDULED = "scheduled"
    """Waiting for its ``run_after`` time (a delay, an eta, or a retry's backoff)."""
    READY = "ready"
    """Waiting for a worker."""
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DISCARDED = "discarded"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        """Whether the run has reached a final status."""
        return self in _FINISHED


_FINISHED = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.DISCARDED, TaskStatus.CANCELLED}
)


_last_high = 0  # the last id's high 64 bits: milliseconds, version 7, sub-millisecond
_random_words: list[int] = []
_run_id_lock = threading.Lock()
_acquire, _release = _run_id_lock.acquire, _run_id_lock.release
_time_ns = time.time_ns


def _after_fork_in_child() -> None:
    # A forked child must not reuse its parent's buffered random bits (that would make the
    # same ids), nor inherit the lock in whatever state another thread of the parent left it.
    global _run_id_lock, _acquire, _release, _random_words, _last_high
    _random_words = []
    _last_high = 0
    _run_id_lock = threading.Lock()
    _acquire, _release = _run_id_lock.acquire, _run_id_lock.release


os.register_at_fork(after_in_child=_after_fork_in_child)


def new_run_id() -> str:
    """Return a new run id: a version-7 UUID, so ids sort by creation time.

    The 12 bits after the millisecond timestamp hold sub-millisecond time (RFC 9562, method 3);
    when the clock stalls or steps back, that time field counts on from the last id instead,
    so ids made in one process are strictly increasing whatever the clock does. The 62 random
    bits are always fresh, from ``os.urandom`` read in blocks (one system call per 512 ids):
    ids never become guessable, not even after a clock step.
    """
    global _last_high, _random_words
    ns = _time_ns()
    high = ns // 1_000_000 << 16 | 0x7000 | ns % 1_000_000 * 4096 // 1_000_000
    _acquire()  # hot path: a bare acquire/release is cheaper than ``with``
    try:
        if high <= _last_high:
            high = _last_high + 1
            if not high & 0xFFF:  # the sub-millisecond field overflowed: next millisecond
                high += 0xF000
        _last_high = high
        if not _random_words:
            _random_words = list(memoryview(os.urandom(4096)).cast("Q"))
        random_bits = _random_words.pop()
    finally:
        _release()
    value = high << 64 | 0x8000_0000_0000_0000 | random_bits & 0x3FFF_FFFF_FFFF_FFFF
    digits = value.to_bytes(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong in a failed run: exception type, message and formatted traceback."""

    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a run, as ``handle.history`` lists them (backends that keep them:
    ``DatabaseBackend`` keeps the last 10 attempts a later one replaced, plus the last)."""

    attempt: int
    outcome: str
    """``retried``, ``lost`` (its worker stopped), or the run's status for its last attempt
    (``running``, ``succeeded``, ``failed``, ...)."""
    worker: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error_type: str = ""
    error_message: str = ""
    """The start of the error's message (its first 500 characters for earlier attempts)."""
