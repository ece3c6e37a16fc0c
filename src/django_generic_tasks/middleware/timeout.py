"""Timeouts (``Task.timeout``): how ``run()`` is called, and refusing a timed sync run while
too many timed-out ones still run in this process (``TASKS_MAX_ABANDONED_THREADS``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import MiddlewareNotUsed

from ..execution import timeouts
from . import AttemptMiddleware, Chain, Handler
from .coroutines import awaited, run_coroutine

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["TimeoutMiddleware", "is_async", "runner_for"]


class TimeoutMiddleware(AttemptMiddleware):
    """Raises ``CapacityExceededError`` (the attempt does not start) when a timed sync run
    could leave one more thread behind than ``TASKS_MAX_ABANDONED_THREADS`` allows. Only in
    the chains of sync tasks with a ``timeout``."""

    def __init__(self, next: Handler, chain: Chain) -> None:
        task_class = chain.task_class
        if task_class is None or task_class.timeout is None or is_async(task_class):
            raise MiddlewareNotUsed
        super().__init__(next, chain)
        self.task_class = task_class
        self.abandoned = timeouts.abandoned  # this process's

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Refuse the attempt when over capacity, else run it."""
        if self.abandoned.count:
            self.abandoned.refuse_when_over_capacity(self.task_class)
        return self.next(task, attempt)


def is_async(task_class: type[Task[Any]]) -> bool:
    """Whether ``task_class.run`` is ``async def``."""
    return inspect.iscoroutinefunction(task_class.run)


def runner_for(task_class: type[Task[Any]]) -> Callable[[Task[Any]], Any]:
    """How to call ``run()`` of ``task_class``: awaited (cancelled at its timeout), on a
    helper thread that is waited for until its timeout, or plainly."""
    timeout = task_class.timeout
    if is_async(task_class):

        def run_async(task: Task[Any]) -> Any:
            return run_coroutine(timeouts.with_timeout(task.run(), timeout))  # type: ignore[arg-type]  # async run()

        return run_async
    if timeout is None:
        return run_plain

    def run_timed(task: Task[Any]) -> Any:
        return timeouts.run_in_thread_with_timeout(task, timeout)

    return run_timed


def run_plain(task: Task[Any]) -> Any:
    """Call ``run()``; await what it returns when that is awaitable."""
    result = task.run()
    if result is not None and inspect.isawaitable(result):
        return run_coroutine(awaited(result))
    return result
