"""A task's concurrency and rate limits on a direct HTTP call (``POST <mount>/<Task.name>``
that is not a push queue's delivery).

A direct call runs the task at once, in the web process, so it is admitted like a run a
worker claims, by whoever keeps the limits of ``TASKS_BACKEND``:

- ``DatabaseBackend``: through its database (``FlowControl.take_direct``): the call holds a
  slot of its concurrency key (a running row the workers count) until it answers, and takes
  its rate limit's turn when one is due now;
- a backend that keeps limits in this process (``ThreadingBackend``, ``ImmediateBackend``,
  ``InMemoryBackend``): through this process's slots and rates;
- any other backend (Celery, Cloud Tasks, django.tasks), which refuses limits at ``start()``:
  the call is refused too (501), never run over the limits.

A call with no free slot or turn is answered 429 with ``Retry-After`` (whole seconds): it is
not queued, and it does not take a turn it does not use.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..conf import get_backend
from ..core.flow import flow_of
from ..execution import limits

__all__ = ["DIRECT_LEASE", "LimitRefused", "LimitsUnsupported", "hold_limits"]

DIRECT_LEASE = 3600.0
"""Seconds a direct call of a task without a ``timeout`` holds its database slot at most (a
web process that dies holding one gives it back when its lease expires; with a ``timeout``:
the timeout and a minute)."""


class LimitRefused(Exception):
    """No slot or rate limit turn is free for a direct call: answer 429."""

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(wait))
        """Whole seconds to wait (the ``Retry-After`` header)."""


class LimitsUnsupported(Exception):
    """The backend keeps no limits a direct call could honour: answer 501."""


def hold_limits(task: Any) -> Callable[[], None] | None:
    """Admit a direct call of ``task`` through its limits: ``None`` when it has none (or
    holds nothing to give back), else the callable that gives its slot back. Raises
    ``LimitRefused`` (no slot or turn free) or ``LimitsUnsupported``."""
    flow = flow_of(task)
    if flow is None:
        return None
    backend = get_backend()
    from ..backends.database import DatabaseBackend

    if isinstance(backend, DatabaseBackend):
        from django.db import connections

        from ..store import for_connection

        control = for_connection(connections[backend.database]).queue.flow
        holder = f"http:{socket.gethostname()}:{os.getpid()}"
        timeout = type(task).timeout
        lease = DIRECT_LEASE if timeout is None else float(timeout) + 60.0
        run_id, wait = control.take_direct(type(task).name, flow, datetime.now(UTC), lease, holder)
        if run_id is None:
            raise LimitRefused(_refusal(flow), wait)
        if not run_id:
            return None
        return lambda: control.release_direct(run_id, holder)
    if limits.in_process(backend.name):
        key, limit = flow.concurrency_key, flow.concurrency_limit
        if key is not None and limit is not None and not limits.slots.acquire(key, limit):
            raise LimitRefused(_refusal(flow), 1.0)
        if flow.rate is not None and flow.rate_key is not None:
            wait = limits.rates.take(flow.rate_key, flow.rate.interval)
            if wait > 0:
                if key is not None:
                    limits.slots.release(key)
                raise LimitRefused(_refusal(flow), wait)
        if key is None:
            return None
        return lambda: limits.slots.release(key)
    raise LimitsUnsupported(
        f"Task {type(task).name!r} has a concurrency or rate limit, which {backend.name} "
        "cannot honour; it is not run by a direct call."
    )


def _refusal(flow: Any) -> str:
    parts = []
    if flow.concurrency_key is not None:
        parts.append(f"concurrency limit {flow.concurrency_limit} of {flow.concurrency_key!r}")
    if flow.rate is not None:
        parts.append(f"rate limit {flow.rate} of {flow.rate_key!r}")
    return "No free slot or turn: " + ", ".join(parts) + "; try again later."
