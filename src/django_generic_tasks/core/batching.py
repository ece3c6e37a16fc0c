"""The batch that ``start()`` calls join while a ``with tasks.batch():`` block is open.

Only the hook lives here, in the task model's layer: ``dispatch.submit()`` asks
``current_batch`` and hands the start to the open batch (``workflows.batch``), which records
it with the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..backends.base import Backend
    from .enqueue import EnqueueRequest
    from .handles import TaskHandle

__all__ = ["BatchJoin", "current_batch"]


class BatchJoin(Protocol):
    """An open batch: every start made while it is open joins it."""

    def join(
        self, backend: Backend, requests: Sequence[EnqueueRequest], on_commit: bool
    ) -> list[TaskHandle[Any]]:
        """Start ``requests`` on ``backend`` as members of this batch; one handle each."""
        ...


current_batch: ContextVar[BatchJoin | None] = ContextVar("django_generic_tasks_batch", default=None)
"""The batch open in this context (``None``: none)."""
