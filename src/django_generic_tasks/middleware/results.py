"""Typed results (``Task[P, R]``): a successful attempt's return value must be an ``R``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import MiddlewareNotUsed
from pydantic import ValidationError

from ..core.results import result_type_name
from ..core.status import TaskStatus
from ..exceptions import InvalidResultError
from ..execution.attempts import error_info
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["ResultValidationMiddleware", "checked_outcome"]

logger = logging.getLogger("django_generic_tasks")


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

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt."""
        outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
        if outcome.status is TaskStatus.SUCCEEDED:
            return checked_outcome(self.task_class, outcome)
        return outcome


def checked_outcome(task_class: type[Task[Any, Any]], outcome: Outcome) -> Outcome:
    """``outcome`` of a successful attempt, its result validated against the task's result
    type; an invalid result turns it into a final failure (no retry: the code is wrong)."""
    adapter = task_class._result_adapter
    if adapter is None:
        return outcome
    try:
        outcome.result = adapter.validate_python(outcome.result)
    except ValidationError as exc:
        error = InvalidResultError(
            f"{task_class.name} returned a value that is not a valid "
            f"{result_type_name(task_class.result_type)}: {exc}"
        )
        logger.error(
            "Task %s (run %s) returned an invalid result on attempt %d; the run fails "
            "without retry",
            task_class.name,
            outcome.run_id,
            outcome.attempt,
            exc_info=error,
            extra={"task_name": task_class.name, "run_id": outcome.run_id},
        )
        outcome.status, outcome.result, outcome.error = TaskStatus.FAILED, None, error_info(error)
    return outcome
