"""The ``task_started`` / ``task_finished`` signals and the debug log lines of each attempt."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from ..signals import task_finished, task_started
from ..status import TaskStatus
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..attempts import Attempt, Outcome
    from ..task import Task

__all__ = ["SignalsMiddleware"]

logger = logging.getLogger("django_generic_tasks")
_DEBUG = logging.DEBUG


class SignalsMiddleware(AttemptMiddleware):
    """Sends ``task_started`` before and ``task_finished`` after each attempt (also after one
    that could not run: ``task`` ``None``)."""

    poisoned: ClassVar[bool] = True

    def __init__(self, next: Handler, chain: Chain) -> None:
        super().__init__(next, chain)
        self.sender = chain.task_class

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Signal the start, run the attempt, signal its outcome."""
        if task_started.receivers and task is not None:
            task_started.send(
                sender=self.sender, task=task, run_id=attempt.run_id, attempt=attempt.attempt
            )
        debug = logger.isEnabledFor(_DEBUG) and task is not None
        if debug:
            logger.debug(
                "Task %s (run %s) attempt %d started",
                attempt.task_name,
                attempt.run_id,
                attempt.attempt,
            )
        outcome = self.next(task, attempt)
        if debug and outcome.status is TaskStatus.SUCCEEDED:
            logger.debug(
                "Task %s (run %s) succeeded on attempt %d",
                attempt.task_name,
                attempt.run_id,
                attempt.attempt,
            )
        if task_finished.receivers:
            task_finished.send(sender=self.sender, task=task, outcome=outcome)
        return outcome
