"""``WorkflowHandle``: where a chain or group is, which step stopped it and why, its result."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol

from typing_extensions import TypeVar

from ..core.results import decode_result
from ..core.status import ErrorInfo
from ..exceptions import RunFailedError

if TYPE_CHECKING:
    from typing import Self

__all__ = ["WorkflowFailedError", "WorkflowHandle", "WorkflowSource", "WorkflowState"]

R = TypeVar("R", default=Any)

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowState:
    """A workflow as its backend keeps it, in plain values."""

    id: str
    kind: str
    status: str
    """``running``, ``succeeded`` or ``failed``."""
    total: int | None
    """Steps of a chain, members of a group or of a batch (``None``: a batch still open)."""
    done: int
    """Steps or members that ended."""
    runs: tuple[str, ...] = ()
    """The run ids of the steps started so far (a chain) or of the members (a group)."""
    tasks: tuple[str, ...] = ()
    """The task names of ``runs``."""
    callback_run: str | None = None
    failed_position: int | None = None
    """The step or member that stopped the workflow (``None``: none, or its callback)."""
    error: ErrorInfo | None = None
    result_task: str | None = None
    """The task whose result is the workflow's (``None`` for a group without callback)."""
    result: Any = None
    """The workflow's result as stored (JSON data): the last step's, the callback's, or the
    list of the members' results."""


class WorkflowSource(Protocol):
    """What keeps workflows: a backend that ``supports_workflows``."""

    def workflow_state(self, workflow_id: str) -> WorkflowState:
        """The workflow ``workflow_id`` now (``RunNotFoundError`` when unknown)."""
        ...


class WorkflowFailedError(RunFailedError):
    """A workflow stopped: ``RunFailedError`` of the step that stopped it; ``position`` says
    which step (chain) or member (group) it was (``None``: the callback)."""

    position: int | None = None


class WorkflowHandle(Generic[R]):
    """A started workflow: ``refresh()``, ``status``, ``failed_step`` and ``error`` (which
    step stopped it and why), ``wait()`` for its result."""

    def __init__(self, workflow_id: str, source: WorkflowSource, kind: str = "") -> None:
        self.id = workflow_id
        self.source = source
        self.kind = kind
        self.state: WorkflowState | None = None

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.kind} {self.id} {self.status}>"

    def refresh(self) -> Self:
        """Read the workflow's state again from its backend."""
        self.state = self.source.workflow_state(self.id)
        self.kind = self.state.kind
        return self

    def _now(self) -> WorkflowState:
        return self.state if self.state is not None else self.refresh().state  # type: ignore[return-value]

    @property
    def status(self) -> str:
        """``running``, ``succeeded`` or ``failed``, as last read."""
        return self._now().status

    @property
    def run_ids(self) -> tuple[str, ...]:
        """The runs of the steps started so far (a chain) or of the members (a group)."""
        return self._now().runs

    @property
    def callback_run_id(self) -> str | None:
        """The run of a group's callback, once started."""
        return self._now().callback_run

    @property
    def failed_step(self) -> int | None:
        """The 0-based position of the step (member) that stopped the workflow."""
        return self._now().failed_position

    @property
    def error(self) -> ErrorInfo | None:
        """Why the workflow stopped (the failed step's error)."""
        return self._now().error

    def wait(self, timeout: float | None = None, *, interval: float = 0.05) -> R:
        """Block until the workflow ends; return its result (a chain's last step's, a group's
        callback's, or the members' results in order). ``WorkflowFailedError`` when it
        stopped, ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while self.refresh().status == RUNNING:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Workflow {self.id} has not ended after {timeout} s.")
            time.sleep(pause)
            pause = min(interval, pause * 2)
        return self.result()

    def result(self) -> R:
        """The result of an ended workflow (see ``wait()``)."""
        state = self._now()
        if state.status == FAILED:
            raise _failure(state)
        if state.result_task is None:
            return [  # type: ignore[return-value]
                decode_result(name, value)
                for name, value in zip(state.tasks, state.result or [], strict=False)
            ]
        return decode_result(state.result_task, state.result)  # type: ignore[no-any-return]


def _failure(state: WorkflowState) -> WorkflowFailedError:
    error = state.error or ErrorInfo("WorkflowFailed", "the workflow failed")
    where = "its callback" if state.failed_position is None else f"step {state.failed_position}"
    position = state.failed_position
    task = ""
    run_id = state.callback_run or ""
    if position is not None and position < len(state.runs):
        task, run_id = state.tasks[position], state.runs[position]
    message = f"{state.kind} {state.id} stopped at {where} ({task or 'callback'}): {error.message}"
    failure = WorkflowFailedError(error.type, message, error.traceback, task, FAILED, run_id)
    failure.position = position
    return failure
