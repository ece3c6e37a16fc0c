"""The task's lifecycle hooks: ``on_success``, ``on_failure``, ``on_discard``, ``on_retry``."""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import MiddlewareNotUsed

from ..core.status import TaskStatus
from . import AttemptMiddleware, Chain, Handler
from .coroutines import awaited, run_coroutine

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["HooksMiddleware", "run_hook"]

logger = logging.getLogger("django_generic_tasks")


class HooksMiddleware(AttemptMiddleware):
    """Calls the hook of each attempt's outcome on the task; a hook's exception is logged,
    never raised. Only in the chains of tasks that override a hook."""

    def __init__(self, next: Handler, chain: Chain) -> None:
        if chain.task_class is None or not chain.task_class._has_hooks:
            raise MiddlewareNotUsed
        super().__init__(next, chain)

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Run the attempt, then its hook."""
        outcome = self.next(task, attempt)
        run_hook(task, outcome)
        return outcome


def run_hook(task: Task[Any], outcome: Outcome) -> None:
    """Call the lifecycle hook of ``outcome`` on ``task``; log (never raise) its exception."""
    status, error = outcome.status, outcome.error
    args: tuple[Any, ...]
    if status is TaskStatus.SUCCEEDED:
        hook, args = "on_success", (outcome.result,)
    elif error is None or status is TaskStatus.CANCELLED:
        return
    elif outcome.decision.retry:
        hook, args = "on_retry", (error, outcome.decision.retry_at)
    elif status is TaskStatus.DISCARDED:
        hook, args = "on_discard", (error,)
    else:
        hook, args = "on_failure", (error,)
    try:
        result = getattr(task, hook)(*args)
        if result is not None and inspect.isawaitable(result):
            run_coroutine(awaited(result))
    except Exception:
        logger.exception(
            "Task %s (run %s): %s raised after attempt %d; the run's outcome stays %s.",
            outcome.task_name,
            outcome.run_id,
            hook,
            outcome.attempt,
            outcome.run_status,
            extra={"task_name": outcome.task_name, "run_id": outcome.run_id},
        )
