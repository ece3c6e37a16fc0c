"""Run identifiers, statuses and the handle that ``Task.start()`` returns."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backends.base import Backend
    from .progress import Progress


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


@dataclass(slots=True, eq=False)
class TaskHandle[R]:
    """A started task: its run id, task name and last known status.

    Backends that keep results (``supports_results``) can ``refresh()`` the handle and
    ``wait()`` for the run to finish; ``result`` is then what ``run()`` returned, as an ``R``.
    """

    id: str
    name: str
    status: TaskStatus
    backend: Backend | None = field(default=None, repr=False)
    result: R | None = None
    error: ErrorInfo | None = None
    attempts: int = 0
    progress: Progress | None = None
    """The last progress the run reported, on backends that store it (``supports_progress``)."""
    history: tuple[AttemptRecord, ...] = ()
    """The run's attempts, oldest first, on backends that keep them (``DatabaseBackend``)."""

    def cancel(self) -> TaskHandle[R]:
        """Cancel the run: a waiting run at once, a running one cooperatively (its task sees
        ``cancel_requested`` / ``check_cancelled()``); return self, refreshed.

        ``UnsupportedOptionError`` on backends that cannot (``supports_cancel`` false).
        """
        from .exceptions import UnsupportedOptionError

        if self.backend is None or not self.backend.supports_cancel:
            name = type(self.backend).__name__ if self.backend is not None else "this backend"
            raise UnsupportedOptionError(f"{name} cannot cancel runs; run {self.id} goes on.")
        self.backend.cancel_run(self.id)
        return self.refresh()

    def refresh(self) -> TaskHandle[R]:
        """Reload status, result and error from the backend; return self."""
        from .exceptions import ResultNotAvailableError
        from .results import decode_result

        if self.backend is None or not self.backend.supports_results:
            name = type(self.backend).__name__ if self.backend is not None else "this backend"
            raise ResultNotAvailableError(f"{name} does not keep task results; cannot refresh.")
        fresh = self.backend.get_result(self.id)
        self.status, self.error = fresh.status, fresh.error
        self.result = decode_result(self.name, fresh.result)
        self.attempts, self.progress = fresh.attempts, fresh.progress
        self.history = fresh.history
        return self

    def wait(self, timeout: float | None = None) -> R:
        """Block until the run finishes and return its result (``None`` for ``timeout``:
        no limit).

        Raises ``RunFailedError`` (with the run's ``error`` and ``status``) when it failed,
        was discarded or cancelled, ``TimeoutError`` when ``timeout`` seconds pass first, and
        ``ResultNotAvailableError`` at once on backends that keep no results. On PostgreSQL
        the database backend wakes on ``LISTEN/NOTIFY``; other backends poll with a backoff.
        """
        from .results import wait_for

        return wait_for(self, timeout)

    async def await_result(self, timeout: float | None = None) -> R:
        """``wait()`` for async code: the same result and errors, without blocking the loop."""
        from .results import await_result

        return await await_result(self, timeout)
