"""Progress: when a backend stores progress (a sink registered for its name, e.g. the database
worker's throttled writer), the latest report of an attempt is written when it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.exceptions import MiddlewareNotUsed

from ..execution import progress
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["ProgressMiddleware"]


class ProgressMiddleware(AttemptMiddleware):
    """Flushes the attempt's kept progress report to its backend's sink (which ``finish``es
    runs) before the outcome is written. Only on backends with such a sink."""

    def __init__(self, next: Handler, chain: Chain) -> None:
        # Chains are built again when a sink is registered or unregistered.
        finish = getattr(progress.sink_for(chain.backend), "finish", None)
        if finish is None:
            raise MiddlewareNotUsed
        super().__init__(next, chain)
        self.finish = finish
        self.afinish = getattr(progress.sink_for(chain.backend), "afinish", None)

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Run the attempt, then write its latest progress."""
        try:
            return self.next(task, attempt)
        finally:
            self.finish(attempt.run_id)

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt; the writes (of a sink that does them on an
        event loop, else through ``sync_to_async``) are done before the outcome is."""
        try:
            outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
            return outcome
        finally:
            if self.afinish is not None:
                await self.afinish(attempt.run_id)
            else:
                await sync_to_async(self.finish)(attempt.run_id)
