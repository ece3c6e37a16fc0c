"""Workflows kept in this process, for the backends that run tasks in it for tests
(``InMemoryBackend``, ``ImmediateBackend``).

Each started run of a workflow carries its ``MemoryWorkflow`` (``EnqueueRequest.workflow``);
``retry.settle()`` calls ``ended()`` with the run's final outcome, which starts what follows
through the same backend. The runs a workflow starts while one of its runs is ending are
started one after the other by the outermost ``ended()``, so a long chain on
``ImmediateBackend`` does not nest one call per step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..core.batching import current_batch
from ..core.dispatch import submit
from ..core.status import ErrorInfo
from ..exceptions import RunNotFoundError
from .handle import WorkflowState
from .rules import BATCH, CHAIN, Ended, Plan, after_callback, after_member, batch_end

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..backends.base import BaseBackend
    from ..core.enqueue import EnqueueRequest
    from ..core.handles import TaskHandle
    from ..execution.attempts import Outcome

__all__ = ["InProcessWorkflowOperations", "MemoryWorkflow", "MemoryWorkflows"]


@dataclass(slots=True)
class _Run:
    run_id: str
    task_name: str
    role: str
    ended: Ended | None = None


class MemoryWorkflow:
    """One workflow's state in this process; the ``workflow`` of each of its runs."""

    def __init__(self, plan: Plan, backend: BaseBackend) -> None:
        self.plan = plan
        self.backend = backend
        self.status = "running"
        self.failed_position: int | None = None
        self.error: ErrorInfo | None = None
        self.runs: list[_Run] = []
        self.callback: _Run | None = None
        self._positions: dict[str, int] = {}
        self._lock = threading.RLock()
        self._starting: list[EnqueueRequest] = []
        self._draining = False
        self.closed_at: int | None = None
        """A batch: how many runs joined it when its block ended (``None``: still open)."""

    def _join(self, request: EnqueueRequest, role: str) -> EnqueueRequest:
        run = _Run(request.run_id, request.task_name, role)
        if role == "callback":
            self.callback = run
        else:
            self._positions[request.run_id] = len(self.runs)
            self.runs.append(run)
        return replace(request, workflow=self)

    def start(self) -> None:
        """Start the first runs (a chain's first step, a group's members)."""
        with self._lock:
            first = [self._join(request, "member") for request in self.plan.first]
        token = current_batch.set(None)  # a workflow started inside a batch does not join it
        try:
            for request in first:
                submit(self.backend, request)
        finally:
            current_batch.reset(token)

    def ended(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Run ``request`` ended with ``outcome`` (final): advance the workflow."""
        with self._lock:
            status = str(outcome.run_status)
            end = Ended(request.task_name, status, outcome.result, outcome.error)
            callback = self.callback
            if callback is not None and callback.run_id == request.run_id:
                callback.ended = end
                step = after_callback(status, outcome.error)
                position = len(self.runs)
            else:
                position = self._positions.get(request.run_id, -1)
                if position < 0 or self.runs[position].ended is not None:
                    return  # not a member (a batch's callback), or counted already
                self.runs[position].ended = end
                step = after_member(
                    self.plan.kind,
                    self.plan.spec,
                    position,
                    status,
                    outcome.error,
                    result=outcome.result,
                    last=self._all_ended(),
                    members=lambda: [run.ended for run in self.runs],  # type: ignore[misc]
                    failed=self._failed(),
                )
            if not self._take(step):
                return
        self._drain()

    def _all_ended(self) -> bool:
        if self.plan.kind == BATCH and self.closed_at is None:
            return False
        return all(run.ended is not None for run in self.runs)

    def _failed(self) -> int:
        return sum(run.ended is not None and run.ended.status != "succeeded" for run in self.runs)

    def _take(self, step: Any) -> bool:
        """Note ``step`` (lock held); whether this call should start what it queued."""
        if self.status != "running":
            return False
        if step.start is not None:
            role = "member" if self.plan.kind == CHAIN else "callback"
            self._starting.append(self._join(step.start, role))
        self._starting.extend(step.callbacks)
        if step.status != "running":
            self.status = step.status
            self.failed_position = step.failed_position
            self.error = step.error
        if self._draining:
            return False
        self._draining = True
        return True

    def join(self, requests: list[EnqueueRequest]) -> list[EnqueueRequest]:
        """Runs that join this batch, as they are to be enqueued."""
        with self._lock:
            return [self._join(request, "member") for request in requests]

    def close(self, count: int) -> None:
        """The batch's block ended after ``count`` starts."""
        with self._lock:
            self.closed_at = count
            if not self._all_ended() or self.status != "running":
                return
            if not self._take(batch_end(self.plan.spec, self._failed())):
                return
        self._drain()

    def position_of(self, run_id: str) -> tuple[int, str] | None:
        """(position, role) of ``run_id`` in this workflow, if it is one of its runs."""
        with self._lock:
            if run_id in self._positions:
                return self._positions[run_id], "member"
            if self.callback is not None and self.callback.run_id == run_id:
                return len(self.runs), "callback"
        return None

    def counts(self) -> dict[str, int]:
        """The runs by status (a run that has not ended counts as ``ready``)."""
        found: dict[str, int] = {}
        with self._lock:
            for run in self.runs:
                status = run.ended.status if run.ended else "ready"
                found[status] = found.get(status, 0) + 1
        return found

    def _drain(self) -> None:
        token = current_batch.set(None)  # what a workflow starts joins no batch
        try:
            while True:
                with self._lock:
                    if not self._starting:
                        self._draining = False
                        return
                    following = self._starting.pop(0)
                submit(self.backend, following, on_commit=False)
        except BaseException:
            with self._lock:
                self._draining = False
            raise
        finally:
            current_batch.reset(token)

    def state(self) -> WorkflowState:
        """The workflow now, in plain values."""
        with self._lock:
            result_task: str | None = None
            result: Any = None
            if self.status == "succeeded":
                if self.plan.kind == CHAIN:
                    last = self.runs[-1]
                    result_task, result = last.task_name, last.ended and last.ended.result
                elif self.callback is not None:
                    result_task = self.callback.task_name
                    result = self.callback.ended and self.callback.ended.result
                else:
                    result = [run.ended.result if run.ended else None for run in self.runs]
            return WorkflowState(
                id=self.plan.id,
                kind=self.plan.kind,
                status=self.status,
                total=self.plan.total,
                done=sum(run.ended is not None for run in self.runs),
                runs=tuple(run.run_id for run in self.runs),
                tasks=tuple(run.task_name for run in self.runs),
                callback_run=self.callback.run_id if self.callback else None,
                failed_position=self.failed_position,
                error=self.error,
                result_task=result_task,
                result=result,
            )


class MemoryWorkflows:
    """The workflows one backend started in this process, by id."""

    def __init__(self, backend: BaseBackend) -> None:
        self.backend = backend
        self.by_id: dict[str, MemoryWorkflow] = {}

    def start(self, plan: Plan) -> None:
        """Start ``plan`` through the backend."""
        workflow = MemoryWorkflow(plan, self.backend)
        self.by_id[plan.id] = workflow
        workflow.start()

    def join_batch(
        self, batch_id: str, requests: Sequence[EnqueueRequest]
    ) -> list[TaskHandle[Any]]:
        """Enqueue ``requests`` as members of batch ``batch_id``."""
        return self.backend.enqueue_many(self.by_id[batch_id].join(list(requests)))

    def close_batch(self, batch_id: str, count: int) -> None:
        """Batch ``batch_id``'s block ended after ``count`` starts."""
        self.by_id[batch_id].close(count)

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        """Batch ``batch_id``'s runs by status."""
        return self.by_id[batch_id].counts()

    def workflow_of(self, run_id: str) -> tuple[str, str, int, str] | None:
        """(workflow id, kind, position, role) of run ``run_id``, if it is in one here."""
        for workflow in list(self.by_id.values()):
            position = workflow.position_of(run_id)
            if position is not None:
                return workflow.plan.id, workflow.plan.kind, position[0], position[1]
        return None

    def state(self, workflow_id: str) -> WorkflowState:
        """The workflow ``workflow_id`` (``RunNotFoundError`` when unknown here)."""
        try:
            return self.by_id[workflow_id].state()
        except KeyError:
            raise RunNotFoundError(f"There is no workflow {workflow_id!r}.") from None


class InProcessWorkflowOperations:
    """A backend's workflow operations kept in this process, by its ``workflows``
    (``MemoryWorkflows``): mixed into the backends that run workflows in-process, before
    ``BaseBackend``, whose versions refuse."""

    workflows: MemoryWorkflows

    def start_workflow(self, plan: Plan) -> None:
        """Start ``plan``'s workflow through this backend (after commit inside a transaction)."""
        self.workflows.start(plan)

    def workflow_state(self, workflow_id: str) -> WorkflowState:
        """A workflow started through this backend in this process."""
        return self.workflows.state(workflow_id)

    def workflow_of(self, run_id: str) -> tuple[str, str, int, str] | None:
        """The in-process workflow run ``run_id`` belongs to."""
        return self.workflows.workflow_of(run_id)

    def join_batch(
        self, batch_id: str, requests: Sequence[EnqueueRequest], first: int
    ) -> list[TaskHandle[Any]]:
        """Start runs that join batch ``batch_id`` (in-process)."""
        return self.workflows.join_batch(batch_id, requests)

    def close_batch(self, batch_id: str, count: int) -> None:
        """Batch ``batch_id``'s block ended after ``count`` starts."""
        self.workflows.close_batch(batch_id, count)

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        """Batch ``batch_id``'s runs by status."""
        return self.workflows.batch_counts(batch_id)
