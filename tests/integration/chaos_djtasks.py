"""Django ``@task`` functions for the process tests (``DatabaseTaskBackend``, alias ``dgt``).

Worker processes import this module when they first run one of its functions (by its path);
``chaos`` records its number in the ``CHAOS_LOG`` file like ``chaos_tasks.ChaosTask``.
"""

from __future__ import annotations

import asyncio
import time

from django.tasks import TaskContext, task

from tests.integration.chaos_tasks import record


@task(backend="dgt")
def chaos(n: int, sleep: float = 0.0) -> int:
    """Sleeps, then records ``n`` in the side-effect log; returns it."""
    time.sleep(sleep)
    return record(n)


@task(backend="dgt")
async def chaos_async(n: int, sleep: float = 0.0) -> int:
    """``chaos`` as a coroutine, awaited on the worker's event loop."""
    await asyncio.sleep(sleep)
    return record(n)


@task(backend="dgt", takes_context=True)
def attempt_of(context: TaskContext, n: int, sleep: float = 0.0) -> int:
    """Sleeps (on its first attempt only), records ``n``; returns the attempt number the
    context gives."""
    if context.attempt == 1:
        time.sleep(sleep)
    record(n)
    return context.attempt


@task(backend="dgt")
def fails(n: int) -> None:
    """Raises ``ValueError``."""
    raise ValueError(f"chaos {n} failed")
