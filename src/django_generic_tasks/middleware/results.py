"""Typed results (``Task[P, R]``): a successful attempt's return value must be an ``R``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import MiddlewareNotUsed

from ..results import checked_outcome
from ..status import TaskStatus
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..attempts import Attempt, Outcome
    from ..task import Task

__all__ = ["ResultValidationMiddleware"]


class ResultValidationMiddleware(AttemptMiddleware):
    """Validates the result of a successful attempt; an invalid one fails the run (no retry).
    Only for tasks with a result type."""

    def __init__(self, next: Handler, chain: Chain) -> None:
        task_class = chain.task_class
        if task_class is None or task_class._result_adapter is None:
            raise MiddlewareNotUsed
        super().__init__(next, chain)
        self.task_class = task_class

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Run the attempt, then check its result."""
        outcome = self.next(task, attempt)
        if outcome.status is TaskStatus.SUCCEEDED:
            return checked_outcome(self.task_class, outcome)
        return outcome
