"""What the Celery and ``django.tasks`` bridges share: the run summary and its error format.

Both bridges carry every run as one generic task of the other framework, whose body runs
``execution.execute()`` and settles the outcome through the retry seam (``retry.settle``)
with a ``BridgeSink``. What a run leaves behind in the other framework's result store is a
*summary*, a JSON object::

    {"django_generic_tasks": 1, "run_id": "...", "task": "...", "status": "succeeded", "attempt": 1,
     "result": ..., "error": {"type": "...", "message": "...", "traceback": "..."}}

The marker key and the run id tell our runs from anything else stored there (a result of
another application's task is never read back as ours); errors travel as the ``ErrorInfo``
fields, never as text to be parsed back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from ..core.handles import TaskHandle
from ..core.results import decode_result
from ..core.status import ErrorInfo, TaskStatus
from ..exceptions import RunFailedError

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from ..execution import Outcome

__all__ = [
    "MARKER",
    "BridgeSink",
    "apply_summary",
    "deferred_summary",
    "error_fields",
    "error_from_fields",
    "jsonable",
    "read_summary",
    "summary_of",
]

MARKER = "django_generic_tasks"
"""The key every summary carries (its value: the summary format's version)."""
VERSION = 1
_STATUSES = frozenset(str(status) for status in TaskStatus)


def summary_of(outcome: Outcome, *, with_result: bool = True) -> dict[str, Any]:
    """The summary of an attempt's outcome (``with_result=False``: without result/error)."""
    summary: dict[str, Any] = {
        MARKER: VERSION,
        "run_id": outcome.run_id,
        "task": outcome.task_name,
        "status": str(outcome.run_status),
        "attempt": outcome.attempt,
    }
    if outcome.retry_at is not None:
        summary["retry_at"] = outcome.retry_at.isoformat()
    if with_result:
        summary["result"] = jsonable(outcome.result)
        if outcome.error is not None:
            summary["error"] = error_fields(outcome.error)
    return summary


def deferred_summary(request: EnqueueRequest) -> dict[str, Any]:
    """The summary of an attempt this process refused to start (it is requeued as it is)."""
    return {
        MARKER: VERSION,
        "run_id": request.run_id,
        "task": request.task_name,
        "status": str(TaskStatus.SCHEDULED),
        "attempt": request.attempt - 1,
    }


def jsonable(value: Any) -> Any:
    """``value`` as JSON data (Pydantic's JSON form of models, dates...), parts that have
    none as their ``repr``."""
    try:
        return to_jsonable_python(value, fallback=repr)
    except (PydanticSerializationError, ValueError):  # e.g. a circular reference
        return repr(value)


def error_fields(error: ErrorInfo) -> dict[str, str]:
    """``error`` as a JSON object."""
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


def error_from_fields(fields: Any) -> ErrorInfo | None:
    """The ``ErrorInfo`` of a summary's ``error`` object (``None`` if it is not one)."""
    if not isinstance(fields, dict):
        return None
    values = [fields.get(name, "") for name in ("type", "message", "traceback")]
    if not all(isinstance(value, str) for value in values):
        return None
    return ErrorInfo(*values)


def read_summary(value: Any, run_id: str | None = None) -> dict[str, Any] | None:
    """The summary stored as ``value`` (a dict or its JSON text), or ``None`` when ``value``
    is not a summary of ours (of run ``run_id``, when given)."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    if not isinstance(value, dict) or value.get(MARKER) != VERSION:
        return None
    if run_id is not None and value.get("run_id") != run_id:
        return None
    if value.get("status") not in _STATUSES or type(value.get("attempt", 0)) is not int:
        return None
    return value


def apply_summary(handle: TaskHandle[Any], summary: dict[str, Any]) -> None:
    """Set ``handle``'s status, result (as the task's result type), error and attempts from a
    ``read_summary()`` value."""
    handle.status = TaskStatus(summary["status"])
    if isinstance(summary.get("task"), str):
        handle.name = summary["task"]
    handle.result = decode_result(handle.name, summary.get("result"))
    handle.attempts = int(summary.get("attempt", 0))
    handle.error = error_from_fields(summary.get("error"))


def run_failed(error: ErrorInfo, task_name: str) -> RunFailedError:
    """The exception a bridge raises so the other framework records the run as failed."""
    return RunFailedError(error.type, error.message, error.traceback, task_name)


class BridgeSink:
    """The retry-seam hooks of a bridge's generic task: ``record`` keeps the summary to store;
    subclasses implement ``requeue`` by sending the generic task again."""

    def __init__(self, *, with_result: bool = True) -> None:
        self.with_result = with_result
        self.summary: dict[str, Any] | None = None
        self.outcome: Outcome | None = None

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Keep the outcome and its summary (stored by the bridge's task when it returns)."""
        self.outcome = outcome
        self.summary = summary_of(outcome, with_result=self.with_result)

    def requeue(self, request: EnqueueRequest) -> None:
        """Send the generic task again (each bridge does it its own way)."""
        raise NotImplementedError
