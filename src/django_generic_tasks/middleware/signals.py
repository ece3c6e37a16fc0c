"""The ``task_started`` / ``task_finished`` signals of each attempt (in the chains only while
someone listens: connecting a receiver builds the chains again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import MiddlewareNotUsed

from ..signals import on_receivers_changed, task_finished, task_started
from . import AttemptMiddleware, Chain, Handler, forget_chains

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["SignalsMiddleware"]

on_receivers_changed(forget_chains)


class SignalsMiddleware(AttemptMiddleware):
    """Sends ``task_started`` before and ``task_finished`` after each attempt (also after one
    that could not run: ``task`` ``None``)."""

    poisoned: ClassVar[bool] = True

    def __init__(self, next: Handler, chain: Chain) -> None:
        if not (task_started.receivers or task_finished.receivers):
            raise MiddlewareNotUsed
        super().__init__(next, chain)
        self.sender = chain.task_class

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Signal the start, run the attempt, signal its outcome."""
        if task_started.receivers and task is not None:
            task_started.send(
                sender=self.sender, task=task, run_id=attempt.run_id, attempt=attempt.attempt
            )
        outcome = self.next(task, attempt)
        if task_finished.receivers:
            task_finished.send(sender=self.sender, task=task, outcome=outcome)
        return outcome

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt, with ``asend`` (sync receivers run through
        ``sync_to_async``, never on the event loop)."""
        if task_started.receivers and task is not None:
            await task_started.asend(
                sender=self.sender, task=task, run_id=attempt.run_id, attempt=attempt.attempt
            )
        outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
        if task_finished.receivers:
            await task_finished.asend(sender=self.sender, task=task, outcome=outcome)
        return outcome
