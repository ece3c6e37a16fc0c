"""The worker's async side: runs of ``async def run()`` tasks awaited on one event loop.

One claim query takes runs of every kind (the claim knows no task kinds); the worker then
routes each run: async ones to the event loop (``--async-concurrency`` at once), the others to
the thread pool (``--concurrency``). So that neither side hoards runs the other could not start,
the claim's size follows the mix of kinds the recent claims returned: it takes as many runs as
fill the side that fills first at that mix. A claim that guessed the mix wrong leaves at most
one batch waiting on the fuller side, and no claim is made until that side has room again.
Without any async task registered, claims are exactly the thread pool's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..core.registry import registry
from ..execution import Attempt, loop_chain
from ..execution.eventloop import Done, LoopExecutor
from ..middleware.timeout import is_async

if TYPE_CHECKING:
    from ..middleware import AsyncHandler
    from ..store import ClaimedRun
    from .options import WorkerOptions

logger = logging.getLogger("django_generic_tasks.worker")

SNAP = 0.01
"""An estimated share of async runs this close to 0 or 1 is taken as 0 or 1."""


class AsyncRuns:
    """The event loop of a worker, and how many of its runs a claim may take."""

    def __init__(
        self,
        options: WorkerOptions,
        backend: str,
        done: Done,
    ) -> None:
        self.options = options
        self.backend = backend
        self.concurrency = options.async_concurrency
        self.share = 0.5 if any(is_async(cls) for cls in registry) else 0.0
        """The estimated share of async runs among the runs claimed (0: none seen yet)."""
        self.avg_seconds = 0.0
        """How long an async attempt takes (a moving average)."""
        self.executor = LoopExecutor(
            concurrency=self.concurrency,
            done=done,
            db_threads=options.async_db_threads,
            stall_warning=options.async_stall_warning,
            requeue_lost=True,
            name="tasks-worker-loop",
            logger=logger,
        )

    def limit(self) -> int:
        """How many async runs to hold: the slots, plus ``prefetch`` seconds of work (at most
        as many again) waiting to start as slots free."""
        slots = self.concurrency
        if self.avg_seconds <= 0:
            return slots
        return slots + min(slots, int(slots / self.avg_seconds * self.options.prefetch))

    def least_claim(self) -> int:
        """The fewest async runs worth a claim while others run."""
        return max(1, min(self.options.batch, self.concurrency) // 4)

    def take(self, room: int, least: int, cap: int, in_flight: int) -> tuple[int, bool]:
        """How many runs to claim given the thread pool's ``room`` (worth a claim from
        ``least`` on, at most ``cap`` per claim) and ``in_flight`` async runs held; and
        whether a claim is worth it while runs are in flight (a side has room for a batch)."""
        share = self.share
        async_room = self.limit() - in_flight
        take = async_room / share if share else float("inf")
        if share < 1:
            take = min(take, room / (1 - share))
        most = int((1 - share) * cap + share * self.options.batch)
        worth = (share > 0 and async_room >= self.least_claim()) or (share < 1 and room >= least)
        return max(0, min(int(take), most)), worth

    def route(
        self, runs: list[ClaimedRun]
    ) -> tuple[list[ClaimedRun], list[tuple[ClaimedRun, Attempt, AsyncHandler]]]:
        """Split claimed runs into those for the threads and those for the loop; learn the
        mix."""
        on_threads: list[ClaimedRun] = []
        on_loop: list[tuple[ClaimedRun, Attempt, AsyncHandler]] = []
        backend = self.backend
        for run in runs:
            chain = loop_chain(run.task_name, backend)
            if chain is None:
                on_threads.append(run)
            else:
                on_loop.append((run, attempt_of(run, backend), chain))
        if runs:
            share = 0.5 * self.share + 0.5 * len(on_loop) / len(runs)
            # A pure stream of one kind (several claims in a row) counts as just that kind:
            # a claim that then meets the other kind leaves at most one batch waiting.
            self.share = 0.0 if share < SNAP else 1.0 if share > 1 - SNAP else share
        return on_threads, on_loop

    def learn(self, seconds: float) -> None:
        """An async attempt took ``seconds``."""
        average = self.avg_seconds
        self.avg_seconds = seconds if not average else 0.9 * average + 0.1 * seconds


def attempt_of(run: ClaimedRun, backend: str) -> Attempt:
    """The attempt of a claimed run, as ``execute()`` takes it."""
    return Attempt(
        task_name=run.task_name,
        params=run.params,
        run_id=run.id,
        attempt=run.attempt,
        max_attempts=run.max_attempts,
        queue=run.queue,
        backend=backend,
        trace_context=run.trace_context,
        waiting_since=run.run_after,
    )


__all__ = ["AsyncRuns", "attempt_of"]
