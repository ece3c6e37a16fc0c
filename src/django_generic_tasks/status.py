"""Run identifiers, statuses and the handle that ``Task.start()`` returns."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends.base import Backend


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


def new_run_id() -> str:
    """Return a new run id: a version-7 UUID, so ids sort by creation time."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10))
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong in a failed run: exception type, message and formatted traceback."""

    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(slots=True, eq=False)
class TaskHandle:
    """A started task: its run id, task name and last known status.

    Backends that keep results (``supports_results``) can ``refresh()`` the handle.
    """

    id: str
    name: str
    status: TaskStatus
    backend: Backend | None = field(default=None, repr=False)
    result: Any = None
    error: ErrorInfo | None = None
    attempts: int = 0

    def refresh(self) -> TaskHandle:
        """Reload status, result and error from the backend; return self."""
        from .exceptions import ResultNotAvailableError

        if self.backend is None or not self.backend.supports_results:
            name = type(self.backend).__name__ if self.backend is not None else "this backend"
            raise ResultNotAvailableError(f"{name} does not keep task results; cannot refresh.")
        fresh = self.backend.get_result(self.id)
        self.status, self.result, self.error = fresh.status, fresh.result, fresh.error
        self.attempts = fresh.attempts
        return self
