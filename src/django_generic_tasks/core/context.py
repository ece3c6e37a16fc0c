"""``RunContext``: what a task's ``run()`` knows about the run it is part of (``self.context``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["RunContext", "started_at_of"]


@dataclass(frozen=True, slots=True)
class RunContext:
    """The run an attempt belongs to, as ``self.context`` inside ``run()``.

    ``run_id`` is the same for every attempt of one run (a stable idempotency key for calls
    that must not happen twice, e.g. ``f"charge-{self.context.run_id}"`` for a payment API);
    ``attempt`` counts from 1; ``enqueued_at`` is when the run was first started (``None`` when
    not known); ``backend`` names what runs it (the backend class, ``"http"`` for a direct
    ``POST`` to the task's endpoint, ``"direct"`` for ``run()`` called by hand).
    """

    run_id: str
    attempt: int
    max_attempts: int
    queue: str
    enqueued_at: datetime | None
    backend: str


def started_at_of(run_id: str) -> datetime | None:
    """When a run was started, read from its id (a version-7 UUID carries the millisecond);
    ``None`` for ids of another shape."""
    try:
        value = uuid.UUID(run_id)
    except (ValueError, TypeError, AttributeError):
        return None
    if value.version != 7:
        return None
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)
