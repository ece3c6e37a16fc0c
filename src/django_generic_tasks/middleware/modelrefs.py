"""``ModelRef`` params: their rows are loaded before ``run()``; a missing row discards the run
(``Task.missing_models_fail = True``: fails it, retried per the policy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.exceptions import MiddlewareNotUsed

from ..core.modelref import resolve_model_refs
from ..execution.attempts import failed
from . import AttemptMiddleware, Chain, Handler

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = ["ModelRefsMiddleware"]


class ModelRefsMiddleware(AttemptMiddleware):
    """Loads the rows the params refer to. Only for tasks whose params hold ``ModelRef``s."""

    def __init__(self, next: Handler, chain: Chain) -> None:
        if chain.task_class is None or not chain.task_class._has_model_refs:
            raise MiddlewareNotUsed
        super().__init__(next, chain)

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Load the rows, then run the attempt; a loading error is the attempt's outcome."""
        try:
            resolve_model_refs(task.params)
        except Exception as exc:
            return failed(task, exc)
        return self.next(task, attempt)

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """The same around an awaited attempt; the rows are read through ``sync_to_async``."""
        try:
            await sync_to_async(resolve_model_refs)(task.params)
        except Exception as exc:
            return failed(task, exc)
        outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
        return outcome
