"""Concurrency and rate limits around the attempts of backends that honour them in this
process (``execution.limits``). Only in the chains of tasks with a ``concurrency_limit`` or a
``rate_limit``, on such backends: ``DatabaseBackend``'s worker claims only runs the limits
admit, so its chains do not carry this middleware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.exceptions import MiddlewareNotUsed

from ..core.flow import flow_of
from ..exceptions import FlowDeferred
from ..execution import limits
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["FlowLimitsMiddleware"]


class FlowLimitsMiddleware(AttemptMiddleware):
    """Raises ``FlowDeferred`` (the attempt does not start and does not count) when the run's
    concurrency key has no free slot, or its rate limit makes it due later."""

    def __init__(self, next: Handler, chain: Chain) -> None:
        task_class = chain.task_class
        if (
            task_class is None
            or (task_class.concurrency_limit is None and task_class._rate is None)
            or not limits.in_process(chain.backend)
        ):
            raise MiddlewareNotUsed
        super().__init__(next, chain)

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Run the attempt in a slot, at its rate; else defer it."""
        slot = self._admit(task, attempt)
        try:
            return self.next(task, attempt)
        finally:
            if slot is not None:
                limits.slots.release(slot)

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt (admission is quick, in-process work)."""
        slot = self._admit(task, attempt)
        try:
            outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
            return outcome
        finally:
            if slot is not None:
                limits.slots.release(slot)

    @staticmethod
    def _admit(task: Task[Any], attempt: Attempt) -> str | None:
        """Take the run's slot and its rate limit turn (the key of the slot taken, if any), or
        raise ``FlowDeferred``."""
        flow = flow_of(task)
        assert flow is not None
        key, limit = flow.concurrency_key, flow.concurrency_limit
        if key is None or limit is None:
            key = None
        elif not limits.slots.acquire(key, limit):
            raise FlowDeferred(
                f"concurrency limit {limit} of {key!r} reached",
                park=partial(limits.slots.park, key, limit),
            )
        try:
            if flow.rate is not None and flow.rate_key is not None:
                wait = limits.rates.reserve(flow.rate_key, flow.rate.interval, attempt.run_id)
                if wait > 0:
                    raise FlowDeferred(
                        f"rate limit {flow.rate} of {flow.rate_key!r}",
                        until=datetime.now(UTC) + timedelta(seconds=wait),
                    )
        except BaseException:
            if key is not None:
                limits.slots.release(key)
            raise
        return key
