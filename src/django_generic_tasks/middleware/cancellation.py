"""Cooperative cancel around an attempt: a run whose cancel was requested before its attempt
started never starts (``CANCELLED``); the request is forgotten when the attempt ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import MiddlewareNotUsed

from ..core.status import TaskStatus
from ..exceptions import TaskCancelled
from ..execution import cancellation
from ..execution.attempts import Outcome, error_info
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt

__all__ = ["CancellationMiddleware"]


class CancellationMiddleware(AttemptMiddleware):
    """Ends an attempt whose run was asked to stop before it began; clears the request after.
    Only on backends whose cancel requests reach this process (``cancellation.watch``)."""

    def __init__(self, next: Handler, chain: Chain) -> None:
        self.requests = cancellation.requests  # this process's: its worker marks them
        if not self.requests.delivered_to(chain.backend):
            raise MiddlewareNotUsed  # the task's own check_cancelled() still asks
        super().__init__(next, chain)

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """``CANCELLED`` when asked before the start, else the attempt's outcome."""
        run_id = attempt.run_id
        if self.requests.is_requested(run_id):
            return self._cancelled(task, attempt)
        try:
            return self.next(task, attempt)
        finally:
            self.requests.clear(run_id)  # asked while it ran: the attempt is over

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt."""
        run_id = attempt.run_id
        if self.requests.is_requested(run_id):
            return self._cancelled(task, attempt)
        try:
            outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
            return outcome
        finally:
            self.requests.clear(run_id)

    def _cancelled(self, task: Task[Any], attempt: Attempt) -> Outcome:
        run_id = attempt.run_id
        self.requests.clear(run_id)
        error = TaskCancelled(f"Run {run_id} was cancelled before it started.")
        return Outcome(
            run_id,
            attempt.task_name,
            attempt.attempt,
            task.context.max_attempts,
            TaskStatus.CANCELLED,
            error=error_info(error),
        )
