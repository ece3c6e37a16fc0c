"""OpenTelemetry metrics of each attempt: how long its run waited, how long it ran, how it
ended. Only while OpenTelemetry is configured (see ``middleware.tracing``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import MiddlewareNotUsed

from .. import observability
from . import AttemptMiddleware, Chain, Handler
from .tracing import queue_of

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["MetricsMiddleware"]


class MetricsMiddleware(AttemptMiddleware):
    """Records ``queue.wait`` before, ``runs.finished`` and ``run.duration`` after each attempt."""

    poisoned: ClassVar[bool] = True

    def __init__(self, next: Handler, chain: Chain) -> None:
        if not (observability.maybe and observability.active()):
            raise MiddlewareNotUsed
        from ..observability import metrics

        super().__init__(next, chain)
        self.metrics = metrics

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Record the wait, run the attempt, record how it ended and how long it took."""
        metrics = self.metrics
        began = time.perf_counter()
        queue = queue_of(self.chain, attempt)
        metrics.record_waited(attempt.task_name, queue, attempt.waiting_since)
        outcome = self.next(task, attempt)
        metrics.record_finished(
            attempt.task_name, queue, metrics.outcome_name(outcome), time.perf_counter() - began
        )
        return outcome

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt."""
        metrics = self.metrics
        began = time.perf_counter()
        queue = queue_of(self.chain, attempt)
        metrics.record_waited(attempt.task_name, queue, attempt.waiting_since)
        outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
        metrics.record_finished(
            attempt.task_name, queue, metrics.outcome_name(outcome), time.perf_counter() - began
        )
        return outcome
