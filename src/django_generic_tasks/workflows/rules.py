"""What a workflow does next, in plain values: shared by every backend that holds workflows.

``fit()`` checks, when a workflow is built, that one task's result can become the next task's
params; ``next_request()`` and ``callback_request()`` build the run that follows from the
results (JSON data, as backends keep them); ``after_member()`` and ``after_callback()`` say
what a member's end means for its workflow. No storage here: the in-memory book
(``workflows.memory``) and the run store (``store.workflows``) apply these decisions.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from ..core.enqueue import EnqueueRequest
from ..core.registry import get_task_class
from ..core.status import ErrorInfo, TaskStatus
from ..exceptions import TaskDefinitionError

__all__ = [
    "CHAIN",
    "GROUP",
    "Ended",
    "Plan",
    "Step",
    "after_callback",
    "after_member",
    "callback_field",
    "callback_request",
    "fit",
    "next_request",
]

CHAIN = "chain"
GROUP = "group"
BATCH = "batch"
OnFailure = Literal["fail", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A workflow as a backend stores it: its id, kind, the task names of its steps (a
    chain) and its callback (a group), and the runs it starts with."""

    id: str
    kind: str
    steps: tuple[str, ...] = ()
    """A chain's task names in order (the first is already in ``first``)."""
    callback: str | None = None
    """A group's callback task name."""
    on_failure: OnFailure = "fail"
    """A group's rule for failed members: ``fail`` the workflow, or pass ``none`` for them."""
    callbacks: dict[str, tuple[str, str]] | None = None
    """A batch's callbacks: ``on_success`` / ``on_finish`` / ``on_failure`` -> (task name,
    params JSON)."""
    first: tuple[EnqueueRequest, ...] = ()
    """The runs started with the workflow: a chain's first step, a group's members."""

    @property
    def spec(self) -> dict[str, Any]:
        """What a store keeps of the plan besides its runs (JSON data)."""
        spec: dict[str, Any] = {
            "steps": list(self.steps),
            "callback": self.callback,
            "on_failure": self.on_failure,
        }
        if self.callbacks is not None:
            spec["callbacks"] = {k: list(v) for k, v in self.callbacks.items()}
        return spec

    @property
    def total(self) -> int | None:
        """Steps of a chain, members of a group (``None``: a batch, until it is closed)."""
        if self.kind == BATCH:
            return None
        return len(self.steps) if self.kind == CHAIN else len(self.first)


@dataclass(frozen=True, slots=True)
class Step:
    """What becomes of a workflow after one of its runs ended: ``status`` of the workflow
    (``running`` while it goes on), the failed position and error, the run that starts next."""

    status: str
    failed_position: int | None = None
    error: ErrorInfo | None = None
    start: EnqueueRequest | None = None
    callbacks: tuple[EnqueueRequest, ...] = ()
    """A batch's callbacks to start (plain runs, not members)."""


GOES_ON = Step("running")


def _accepts(annotation: Any, value_type: Any) -> bool:
    """Whether a field annotated ``annotation`` accepts values of ``value_type``."""
    if annotation == value_type or value_type is Any or annotation is Any:
        return True
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts(arg, value_type) for arg in get_args(annotation))
    if isinstance(annotation, type) and isinstance(value_type, type):
        try:
            return issubclass(value_type, annotation)
        except TypeError:
            return False
    return False


def fit(result_type: Any, task_class: type[Any], where: str) -> str | None:
    """How ``task_class``'s params are built from a result of ``result_type``: ``None`` when
    the params model is that type, else the name of its one field that accepts it.
    ``TaskDefinitionError`` (naming ``where``) when neither holds."""
    model = task_class.params_model
    if result_type is model or (
        isinstance(result_type, type) and issubclass(result_type, model) and result_type is not Any
    ):
        return None
    fields = model.model_fields
    if len(fields) == 1:
        name, field = next(iter(fields.items()))
        if _accepts(field.annotation, result_type):
            return str(name)
    raise TaskDefinitionError(
        f"{where}: {task_class.name} cannot take the previous step's result "
        f"({_type_name(result_type)}): its params model {model.__name__} must be that type, "
        f"or have exactly one field that accepts it (it has {', '.join(fields) or 'none'})."
    )


def callback_field(member_result: Any, task_class: type[Any], on_failure: OnFailure) -> str:
    """The one field of ``task_class``'s params that takes the members' results
    (``list[R]``; ``list[R | None]`` with ``on_failure="none"``), or ``TaskDefinitionError``."""
    fields = task_class.params_model.model_fields
    if len(fields) == 1:
        name, field = next(iter(fields.items()))
        if get_origin(field.annotation) is list:
            (item,) = get_args(field.annotation) or (Any,)
            takes_none = item is Any or _accepts(item, type(None))
            if _accepts(item, member_result) and (on_failure == "fail" or takes_none):
                return str(name)
    wanted = f"list[{_type_name(member_result)}" + (" | None]" if on_failure == "none" else "]")
    raise TaskDefinitionError(
        f"group(...).then({task_class.name}): its params model "
        f"{task_class.params_model.__name__} must have exactly one field, typed {wanted}."
    )


def _type_name(value: Any) -> str:
    return getattr(value, "__name__", None) or repr(value)


def _request(task_name: str, params: Any) -> EnqueueRequest:
    task_class = get_task_class(task_name)
    return EnqueueRequest.for_task(task_class(params))


def next_request(steps: Sequence[str], position: int, result: Any) -> EnqueueRequest:
    """The run of chain step ``position + 1``, its params built from step ``position``'s
    ``result`` (JSON data)."""
    previous = get_task_class(steps[position])
    task_class = get_task_class(steps[position + 1])
    field = fit(previous.result_type, task_class, "chain")
    return _request(task_class.name, result if field is None else {field: result})


@dataclass(frozen=True, slots=True)
class Ended:
    """How one member run ended: its task, status, result (JSON data) and error."""

    task_name: str
    status: str
    result: Any = None
    error: ErrorInfo | None = None


def callback_request(
    callback: str, on_failure: OnFailure, members: Sequence[Ended]
) -> EnqueueRequest:
    """The callback's run, its params the members' results in member order (a failed
    member's result is ``None``)."""
    task_class = get_task_class(callback)
    result_type = get_task_class(members[0].task_name).result_type if members else Any
    field = callback_field(result_type, task_class, on_failure)
    values = [m.result if m.status == TaskStatus.SUCCEEDED else None for m in members]
    return _request(callback, {field: values})


def after_member(
    kind: str,
    spec: dict[str, Any],
    position: int,
    status: str,
    error: ErrorInfo | None,
    *,
    result: Any = None,
    last: bool = False,
    members: typing.Callable[[], Sequence[Ended]] | None = None,
    failed: int = 0,
) -> Step:
    """What member ``position``'s end (``status``) means for its workflow.

    A chain goes on to its next step, ends with its last one, or fails at the first step that
    did not succeed. A group waits for ``last`` (every member ended); then it starts its
    callback (``members()``: how each ended, in member order), or ends: failed at its first
    failed member unless it has a callback and ``on_failure`` is ``none``.
    """
    if kind == CHAIN:
        if status != TaskStatus.SUCCEEDED:
            return Step("failed", position, error or _ended_as(status))
        steps = spec["steps"]
        if position + 1 >= len(steps):
            return Step("succeeded")
        try:
            return Step("running", start=next_request(steps, position, result))
        except Exception as exc:  # the result does not validate as the next params
            return Step("failed", position + 1, ErrorInfo(type(exc).__name__, str(exc)))
    if not last:
        return GOES_ON
    if kind == BATCH:
        return batch_end(spec, failed)
    assert members is not None
    ended = members()
    failed_at = [n for n, m in enumerate(ended) if m.status != TaskStatus.SUCCEEDED]
    callback = spec.get("callback")
    if failed_at and (callback is None or spec.get("on_failure", "fail") == "fail"):
        first = ended[failed_at[0]]
        return Step("failed", failed_at[0], first.error or _ended_as(first.status))
    if callback is None:
        return Step("succeeded")
    try:
        return Step("running", start=callback_request(callback, spec["on_failure"], ended))
    except Exception as exc:
        return Step("failed", None, ErrorInfo(type(exc).__name__, str(exc)))


def batch_end(spec: dict[str, Any], failed: int) -> Step:
    """A batch whose last run ended (``failed`` of them did not succeed): it ends, and its
    callbacks start: ``on_finish`` always, ``on_success`` or ``on_failure``."""
    wanted = ["on_finish", "on_failure" if failed else "on_success"]
    starts = []
    for which in wanted:
        found = spec.get("callbacks", {}).get(which)
        if found:
            name, params_json = found
            task_class = get_task_class(name)
            starts.append(EnqueueRequest.for_task(task_class(params_json)))
    if failed:
        error = ErrorInfo("BatchFailed", f"{failed} run(s) of the batch did not succeed")
        return Step("failed", None, error, callbacks=tuple(starts))
    return Step("succeeded", callbacks=tuple(starts))


def after_callback(status: str, error: ErrorInfo | None) -> Step:
    """What the callback's end means: the workflow ends as the callback did."""
    if status == TaskStatus.SUCCEEDED:
        return Step("succeeded")
    return Step("failed", None, error or _ended_as(status))


def _ended_as(status: str) -> ErrorInfo:
    return ErrorInfo(str(status).capitalize(), f"the run ended {status}")
