"""OpenTelemetry: each attempt in a CONSUMER span, a child of the span that started the run
(its ``traceparent``). Only while a tracer or meter provider is configured
(``observability.active()``); configuring one late and calling ``observability.refresh()``
rebuilds the chains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import MiddlewareNotUsed

from .. import observability
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["TracingMiddleware", "queue_of"]


class TracingMiddleware(AttemptMiddleware):
    """Runs each attempt (also one that cannot run) in a ``process <queue>`` span."""

    poisoned: ClassVar[bool] = True

    def __init__(self, next: Handler, chain: Chain) -> None:
        if not (observability.maybe and observability.active()):
            raise MiddlewareNotUsed
        from ..observability import tracing

        super().__init__(next, chain)
        self.tracing = tracing

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Open the attempt's span, run the attempt, record its outcome on the span."""
        with self._span(attempt) as span:
            outcome = self.next(task, attempt)
            self.tracing.end_process_span(span, outcome)
        return outcome

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt (the span is the asyncio task's current one)."""
        with self._span(attempt) as span:
            outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
            self.tracing.end_process_span(span, outcome)
        return outcome

    def _span(self, attempt: Attempt) -> Any:
        """The attempt's CONSUMER span (a context manager), child of the context it carries."""
        return self.tracing.process_span(
            queue_of(self.chain, attempt),
            attempt.task_name,
            attempt.run_id,
            attempt.attempt,
            attempt.trace_context,
            attempt.trace_link,
        )


def queue_of(chain: Chain, attempt: Attempt) -> str:
    """The attempt's queue: the one it was sent on, else its task's, else ``default``."""
    if attempt.queue:
        return attempt.queue
    return chain.task_class.queue if chain.task_class is not None else "default"
