"""``with tasks.batch(on_success=..., on_finish=..., on_failure=...) as b:``: every start inside
joins the batch; its callbacks start once, when the batch is closed and its last run ended."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from contextvars import Token
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..conf import get_backend
from ..core.batching import BatchJoin, current_batch
from ..core.enqueue import EnqueueRequest
from ..core.handles import TaskHandle
from ..core.params import dump_params
from ..core.status import TaskStatus, new_run_id
from ..exceptions import InvalidOptionError, TaskDefinitionError
from ..support.compat import in_atomic_block
from .handle import WorkflowFailedError, WorkflowHandle
from .rules import BATCH, Plan

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..core.task import Task

__all__ = ["Batch", "batch"]


class Batch:
    """An open batch of runs (``tasks.batch()``): its ``handle`` counts its runs by status
    and ``wait()``s for all of them."""

    def __init__(
        self,
        *,
        on_success: Task[Any, Any] | None = None,
        on_finish: Task[Any, Any] | None = None,
        on_failure: Task[Any, Any] | None = None,
        backend: Backend | None = None,
    ) -> None:
        from ..core.task import Task

        callbacks: dict[str, tuple[str, str]] = {}
        for which, task in (
            ("on_success", on_success),
            ("on_finish", on_finish),
            ("on_failure", on_failure),
        ):
            if task is None:
                continue
            if not isinstance(task, Task):
                raise TaskDefinitionError(
                    f"batch({which}=...) must be a task with its params, such as "
                    f"NotifyTask(params), not {task!r}."
                )
            callbacks[which] = (type(task).name, dump_params(task.params))
        self.id = new_run_id()
        self.callbacks = callbacks
        self.backend = backend
        self._source: Backend | None = None
        self._count = 0
        self._token: Token[BatchJoin | None] | None = None
        self.handle: WorkflowHandle[dict[str, int]] | None = None

    def __enter__(self) -> Batch:
        if self._token is not None or self.handle is not None:
            raise InvalidOptionError("A batch is opened once.")
        if current_batch.get() is not None:
            raise InvalidOptionError("Batches do not nest: this block is inside another batch.")
        source = self.backend or get_backend()
        source.start_workflow(Plan(id=self.id, kind=BATCH, callbacks=self.callbacks))
        self._source = source
        self.handle = WorkflowHandle(self.id, source, BATCH)
        self._token = current_batch.set(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._token is not None
        assert self._source is not None
        current_batch.reset(self._token)
        # Closed however the block ended: the runs started in it run, and end the batch.
        self._source.close_batch(self.id, self._count)

    def join(
        self, backend: Backend, requests: Sequence[EnqueueRequest], on_commit: bool
    ) -> list[TaskHandle[Any]]:
        """Start ``requests`` as members (through the batch's backend only)."""
        if backend is not self._source:
            raise InvalidOptionError(
                f"A start inside a batch goes to the batch's backend ({self._source!r}), "
                f"not to {backend!r}."
            )
        first, self._count = self._count, self._count + len(requests)
        if on_commit and not backend.enqueues_in_transaction and in_atomic_block():
            from django.db import transaction

            transaction.on_commit(partial(backend.join_batch, self.id, requests, first))
            return [
                TaskHandle(
                    id=r.run_id, name=r.task_name, status=TaskStatus.PENDING, backend=backend
                )
                for r in requests
            ]
        return backend.join_batch(self.id, requests, first)

    def counts(self) -> dict[str, int]:
        """The batch's runs by status, now."""
        assert self._source is not None
        return self._source.batch_counts(self.id)

    def wait(self, timeout: float | None = None) -> dict[str, int]:
        """Block until the batch ended (closed, every run ended); its counts by status."""
        assert self.handle is not None, "wait() once the batch's block ran"
        with suppress(WorkflowFailedError):  # some runs did not succeed: the counts say which
            self.handle.wait(timeout)
        return self.counts()


def batch(
    *,
    on_success: Task[Any, Any] | None = None,
    on_finish: Task[Any, Any] | None = None,
    on_failure: Task[Any, Any] | None = None,
    backend: Backend | None = None,
) -> Batch:
    """A batch: ``with tasks.batch(on_finish=ReportTask(params)) as b:``; every ``start()``
    inside joins it. When the block has ended and the last run ended, ``on_finish`` starts,
    and ``on_success`` (every run succeeded) or ``on_failure`` (some did not), once each."""
    return Batch(on_success=on_success, on_finish=on_finish, on_failure=on_failure, backend=backend)
