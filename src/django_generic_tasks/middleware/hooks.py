"""The task's lifecycle hooks: ``on_success``, ``on_failure``, ``on_discard``, ``on_retry``."""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.exceptions import MiddlewareNotUsed

from ..core.status import TaskStatus
from ..core.task import Task
from . import AttemptMiddleware, Chain, Handler
from .coroutines import awaited, run_coroutine

if TYPE_CHECKING:
    from ..execution.attempts import Attempt, Outcome

__all__ = ["HooksMiddleware", "run_hook", "run_hook_async"]

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

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt: an ``async def`` hook is awaited on the loop,
        a sync one runs through ``sync_to_async``."""
        outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
        await run_hook_async(task, outcome)
        return outcome


def _hook_of(outcome: Outcome) -> tuple[str, tuple[Any, ...]] | None:
    """The name and arguments of the lifecycle hook of ``outcome`` (``None``: none)."""
    status, error = outcome.status, outcome.error
    if status is TaskStatus.SUCCEEDED:
        return "on_success", (outcome.result,)
    if error is None or status is TaskStatus.CANCELLED:
        return None
    if outcome.decision.retry:
        return "on_retry", (error, outcome.decision.retry_at)
    if status is TaskStatus.DISCARDED:
        return "on_discard", (error,)
    return "on_failure", (error,)


def run_hook(task: Task[Any], outcome: Outcome) -> None:
    """Call the lifecycle hook of ``outcome`` on ``task``; log (never raise) its exception."""
    found = _hook_of(outcome)
    if found is None:
        return
    hook, args = found
    try:
        result = getattr(task, hook)(*args)
        if result is not None and inspect.isawaitable(result):
            run_coroutine(awaited(result))
    except Exception:
        _log_hook_error(outcome, hook)


async def run_hook_async(task: Task[Any], outcome: Outcome) -> None:
    """``run_hook`` on an event loop: an ``async def`` hook awaited, a sync one run through
    ``sync_to_async`` (it may use the ORM)."""
    found = _hook_of(outcome)
    if found is None:
        return
    hook, args = found
    method = getattr(task, hook)
    if getattr(type(task), hook) is getattr(Task, hook):
        return  # not overridden: no thread hop for a no-op
    try:
        if inspect.iscoroutinefunction(method):
            await method(*args)
        else:
            result = await sync_to_async(method)(*args)
            if result is not None and inspect.isawaitable(result):
                await result
    except Exception:
        _log_hook_error(outcome, hook)


def _log_hook_error(outcome: Outcome, hook: str) -> None:
    logger.exception(
        "Task %s (run %s): %s raised after attempt %d; the run's outcome stays %s.",
        outcome.task_name,
        outcome.run_id,
        hook,
        outcome.attempt,
        outcome.run_status,
        extra={"task_name": outcome.task_name, "run_id": outcome.run_id},
    )
