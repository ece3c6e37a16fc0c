"""Workflows: ``tasks.chain()`` (each step's result becomes the next step's params) and
``tasks.group(...).then()`` (members in parallel, one callback with their results in order).

Built once on the two seams every backend shares: a run's end goes through ``retry.settle()``
(in-process backends: ``workflows.memory``) or through the run store's outcome transaction
(``DatabaseBackend``: ``store.workflows``), where what follows is started. Which step follows
and with which params is decided here (``rules``), the same way for every backend. Backends
that cannot hold a workflow refuse it (``supports_workflows``; ``UnsupportedOptionError``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, overload

from typing_extensions import TypeVar

from ..conf import get_backend
from ..core.enqueue import EnqueueRequest
from ..core.status import new_run_id
from ..exceptions import InvalidOptionError, TaskDefinitionError
from .batch import Batch, batch
from .handle import WorkflowFailedError, WorkflowHandle, WorkflowState
from .rules import CHAIN, GROUP, OnFailure, Plan, callback_field, fit

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..core.task import Task

__all__ = [
    "Batch",
    "Chain",
    "Group",
    "GroupWithCallback",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowState",
    "batch",
    "chain",
    "group",
]

R = TypeVar("R", default=Any)
R1 = TypeVar("R1")
R2 = TypeVar("R2")
R3 = TypeVar("R3")
R4 = TypeVar("R4")
R5 = TypeVar("R5")


def _task_base() -> type[Task[Any, Any]]:
    from ..core.task import Task

    return Task


def _start(plan: Plan, backend: Backend | None) -> WorkflowHandle[Any]:
    source = backend or get_backend()
    source.start_workflow(plan)  # UnsupportedOptionError where not supports_workflows
    return WorkflowHandle(plan.id, source, plan.kind)


class Chain(Generic[R]):
    """Tasks run one after the other, each one's params built from the previous result; its
    result is the last step's. Build it with ``tasks.chain()``."""

    def __init__(self, first: Task[Any, Any], *rest: type[Task[Any, Any]]) -> None:
        task = _task_base()
        if not isinstance(first, task):
            raise TaskDefinitionError(
                f"chain(): the first step must be a task with its params, such as "
                f"FetchTask(params), not {first!r}."
            )
        steps: list[type[Task[Any, Any]]] = [type(first)]
        for number, step in enumerate(rest, start=1):
            if not (isinstance(step, type) and issubclass(step, task)) or step.abstract:
                raise TaskDefinitionError(
                    f"chain(): step {number} must be a task class (its params come from the "
                    f"previous step's result), not {step!r}."
                )
            fit(steps[-1].result_type, step, f"chain() step {number}")
            steps.append(step)
        self.first = first
        self.steps = tuple(steps)

    def start(self, *, backend: Backend | None = None) -> WorkflowHandle[R]:
        """Start the first step (``TASKS_BACKEND`` unless ``backend``); each next step starts
        when the previous one succeeded. Inside ``atomic()`` the start is part of the
        transaction (or waits for its commit, as ``Task.start()``)."""
        plan = Plan(
            id=new_run_id(),
            kind=CHAIN,
            steps=tuple(step.name for step in self.steps),
            first=(EnqueueRequest.for_task(self.first),),
        )
        return _start(plan, backend)


class Group(Generic[R]):
    """Runs started together; ``then()`` adds a callback started once, when all ended.
    Build it with ``tasks.group()``; its result is the list of the members' results."""

    def __init__(self, members: Iterable[Task[Any, R]]) -> None:
        task = _task_base()
        self.members = list(members)
        if not self.members:
            raise InvalidOptionError("group() needs at least one member.")
        for member in self.members:
            if not isinstance(member, task):
                raise TaskDefinitionError(
                    f"group(): each member must be a task with its params, not {member!r}."
                )
        types = {type(m).result_type for m in self.members}
        self.result_type: Any = types.pop() if len(types) == 1 else Any

    def then(
        self, callback: type[Task[Any, R2]], *, on_failure: OnFailure = "fail"
    ) -> GroupWithCallback[R2]:
        """Add ``callback``, started once with the members' results in member order (its
        params model has one field, ``list[R]``). ``on_failure``: ``"fail"`` (default) ends
        the workflow failed at its first failed member, without the callback; ``"none"``
        starts the callback anyway with ``None`` in place of each failed member's result
        (its field must then be ``list[R | None]``)."""
        if on_failure not in ("fail", "none"):
            raise InvalidOptionError("group().then(on_failure=...) must be 'fail' or 'none'.")
        task = _task_base()
        if not (isinstance(callback, type) and issubclass(callback, task)) or callback.abstract:
            raise TaskDefinitionError(f"group().then() needs a task class, not {callback!r}.")
        callback_field(self.result_type, callback, on_failure)
        return GroupWithCallback(self, callback, on_failure)

    def start(self, *, backend: Backend | None = None) -> WorkflowHandle[list[R]]:
        """Start every member (``TASKS_BACKEND`` unless ``backend``)."""
        return _start(self._plan(None, "fail"), backend)

    def _plan(self, callback: str | None, on_failure: OnFailure) -> Plan:
        return Plan(
            id=new_run_id(),
            kind=GROUP,
            callback=callback,
            on_failure=on_failure,
            first=tuple(EnqueueRequest.for_task(member) for member in self.members),
        )


class GroupWithCallback(Generic[R]):
    """A group and its callback (``group(...).then(...)``); its result is the callback's."""

    def __init__(self, group: Group[Any], callback: type[Task[Any, R]], on_failure: OnFailure):
        self.group, self.callback, self.on_failure = group, callback, on_failure

    def start(self, *, backend: Backend | None = None) -> WorkflowHandle[R]:
        """Start every member; the callback starts when the last one ended."""
        return _start(self.group._plan(self.callback.name, self.on_failure), backend)


@overload
def chain[R1](first: Task[Any, R1], /) -> Chain[R1]: ...
@overload
def chain[R2](first: Task[Any, Any], second: type[Task[Any, R2]], /) -> Chain[R2]: ...
@overload
def chain[R3](
    first: Task[Any, Any], second: type[Task[Any, Any]], third: type[Task[Any, R3]], /
) -> Chain[R3]: ...
@overload
def chain[R4](
    first: Task[Any, Any],
    second: type[Task[Any, Any]],
    third: type[Task[Any, Any]],
    fourth: type[Task[Any, R4]],
    /,
) -> Chain[R4]: ...
@overload
def chain[R5](
    first: Task[Any, Any],
    second: type[Task[Any, Any]],
    third: type[Task[Any, Any]],
    fourth: type[Task[Any, Any]],
    fifth: type[Task[Any, R5]],
    /,
) -> Chain[R5]: ...
@overload
def chain(first: Task[Any, Any], /, *rest: type[Task[Any, Any]]) -> Chain[Any]: ...
def chain(first: Task[Any, Any], /, *rest: type[Task[Any, Any]]) -> Chain[Any]:
    """``chain(FetchTask(params), ProcessTask, NotifyTask)``: each next task's params are
    built from the previous task's result (its params model is that result type, or has
    exactly one field that accepts it); checked here, before anything starts
    (``TaskDefinitionError``). ``.start()`` returns a ``WorkflowHandle`` whose ``wait()``
    returns the last step's result."""
    return Chain(first, *rest)


def group(members: Iterable[Task[Any, R]]) -> Group[R]:
    """``group([ResizeTask(p) for p in pages])``: runs started together; ``.then(ZipTask)``
    adds the callback that gets their results in member order."""
    return Group(members)
