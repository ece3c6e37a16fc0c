"""A Django task run's ``TaskRun`` row read as Django's ``TaskResult``.

| run status | ``TaskResultStatus`` |
| --- | --- |
| scheduled, ready (pending is never stored) | ``READY`` |
| running | ``RUNNING`` |
| succeeded | ``SUCCESSFUL`` (``return_value``: the stored JSON) |
| failed, discarded, cancelled | ``FAILED`` |

``worker_ids`` has one entry per attempt started (its worker's id), so ``attempts`` is the
run's attempt count; ``errors`` one per failed attempt (the last with its traceback, earlier
ones with the type and message the run's history keeps); ``enqueued_at`` is when the row was
written, ``started_at`` when its first attempt kept in the history started,
``last_attempted_at`` when its last one did, ``finished_at`` when it ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.status import TaskStatus
from ...store.rows import LOST_ERROR_TYPE
from .runs import PREFIX, DjangoCall, import_task

if TYPE_CHECKING:
    from ...models import TaskRun

_STATUS = {
    TaskStatus.PENDING: "READY",
    TaskStatus.SCHEDULED: "READY",
    TaskStatus.READY: "READY",
    TaskStatus.RUNNING: "RUNNING",
    TaskStatus.SUCCEEDED: "SUCCESSFUL",
    TaskStatus.FAILED: "FAILED",
    TaskStatus.DISCARDED: "FAILED",
    TaskStatus.CANCELLED: "FAILED",
}


def is_django_task_run(run: TaskRun) -> bool:
    """Whether ``run`` is a run of a Django task function."""
    return run.task_name.startswith(PREFIX)


def task_result(run: TaskRun) -> Any:
    """``run`` as a ``django.tasks.TaskResult`` (its ``task`` imported by its module path)."""
    from django.tasks.base import TaskError, TaskResult, TaskResultStatus

    call = DjangoCall.model_validate(run.params)
    task = import_task(run.task_name[len(PREFIX) :]).using(
        priority=run.priority,
        queue_name=run.queue,
        backend=call.backend,
        run_after=call.run_after,
    )
    status = TaskResultStatus(_STATUS[run.task_status])
    records = run.attempt_history()
    worker_ids = [record.worker for record in records]
    if len(worker_ids) < run.attempt:  # the history keeps the last attempts only
        worker_ids[:0] = [""] * (run.attempt - len(worker_ids))
    errors = [
        TaskError(
            exception_class_path=_class_path(record.error_type),
            traceback=f"{record.error_type}: {record.error_message}",
        )
        for record in records[:-1]
        if record.error_type
    ]
    if run.error_type and status == TaskResultStatus.FAILED:
        errors.append(
            TaskError(
                exception_class_path=_class_path(run.error_type),
                traceback=run.error_traceback or f"{run.error_type}: {run.error_message}",
            )
        )
    result: Any = TaskResult(
        task=task,
        id=str(run.id),
        status=status,
        enqueued_at=run.created_at,
        started_at=records[0].started_at if records else None,
        finished_at=run.finished_at if status in _ENDED else None,
        last_attempted_at=run.started_at if run.attempt else None,
        args=call.args,
        kwargs=call.kwargs,
        backend=call.backend,
        errors=errors,
        worker_ids=worker_ids,
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", run.result)
    return result


_ENDED = frozenset({"SUCCESSFUL", "FAILED"})


def _class_path(error_type: str) -> str:
    """The importable class path of a stored error type (a lost worker's is stored short)."""
    if error_type == LOST_ERROR_TYPE:
        return "django_generic_tasks.exceptions.WorkerLost"
    return error_type
