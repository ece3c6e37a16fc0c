"""The Celery tasks of ``CeleryBackend``: one per task class, named by ``Task.name``, all with
one body (``_run_task``) that runs the attempt through ``execution.execute()`` and settles it
through the retry seam; plus the generic ``django_generic_tasks.run`` of earlier versions.

They are registered on every Celery app when it is finalised, and on apps finalised before
this module was imported. A worker that receives a run whose name its app does not know
re-sends it as the generic task (``_run_unknown_as_generic``), so the run still ends the way
it does on every backend (it runs, or fails with ``UnknownTaskError``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from ..core.enqueue import EnqueueRequest
from ..core.registry import registry
from ..core.status import TaskStatus
from ..exceptions import CapacityExceededError, MissingDependencyError
from ..execution import Attempt, execute
from ..execution.retry import defer, settle
from .bridge import MARKER, VERSION, BridgeSink, run_failed

try:
    import celery
    from celery import shared_task
    from celery._state import _get_active_apps as get_active_apps
    from celery._state import connect_on_app_finalize
    from celery.exceptions import Ignore
    from celery.signals import task_unknown
    from kombu.exceptions import DecodeError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "CeleryBackend needs Celery: pip install 'django-generic-tasks[celery]' "
        "(and 'celery[redis]' for a Redis broker)."
    ) from exc

logger = logging.getLogger("django_generic_tasks")

TASK_NAME = "django_generic_tasks.run"
"""The generic Celery task of earlier versions (still registered: queued messages run)."""

SCHEDULED_STATE = "SCHEDULED"
"""The Celery state stored for a run waiting for its ``run_after`` (a delay or a retry)."""

QUEUED_STATE = "QUEUED"
"""The Celery state stored for a run sent and not started yet (with a result backend)."""

SUMMARY_STATES = frozenset({"SUCCESS", SCHEDULED_STATE, QUEUED_STATE})
"""The Celery states whose stored value is always a run summary of ours."""

STARTED_STATE = "STARTED"
"""Celery's own state for a started task, stored with our summary when tracking is on."""


def _run_task(
    self: Any,
    task: str,
    params: str,
    run_id: str,
    attempt: int = 1,
    max_attempts: int | None = None,
    queue: str | None = None,
    priority: int | None = None,
    task_queue: str | None = None,
) -> str | None:
    """Run one attempt of a typed task on a Celery worker and settle its outcome.

    Returns the run's summary as a JSON string when the app has a result backend (Celery reprs
    every return value for its logs, and a string is far cheaper to repr than a dict); a run
    that failed for good raises ``RunFailedError`` so that Celery records a FAILURE.
    ``queue`` is the Celery queue; ``task_queue`` our queue name when it maps to another one.
    """
    our_queue = task_queue or queue or ""
    trace_context = getattr(self.request, "traceparent", None)  # a message header
    request = EnqueueRequest(
        run_id, task, params, our_queue, 0, None, None, max_attempts or 0, None, attempt,
        trace_context,
    )  # fmt: skip
    results = bool(self.app.conf.result_backend)
    sink = _CelerySink(self, queue, priority, results)
    if results and self.app.conf.task_track_started:
        self.update_state(
            task_id=run_id, state=STARTED_STATE, meta=marker(task, run_id, TaskStatus.RUNNING)
        )
    try:
        outcome = execute(
            Attempt(
                task_name=task,
                params=params,
                run_id=run_id,
                attempt=attempt,
                max_attempts=max_attempts,
                queue=our_queue,
                backend="CeleryBackend",
                trace_context=trace_context,
            )
        )
    except CapacityExceededError as exc:  # refused before it ran: the same attempt, later
        defer(sink, request, exc)
        raise Ignore() from None
    request.max_attempts = outcome.max_attempts
    if settle(sink, request, outcome) is not None:
        raise Ignore()  # acknowledged, nothing stored: the SCHEDULED state stays until then
    if outcome.status is TaskStatus.FAILED and outcome.error is not None:
        raise run_failed(outcome.error, task)
    if sink.summary is None or not sink.with_result:
        return None  # nobody can read it back
    return json.dumps(sink.summary)


class _CelerySink(BridgeSink):
    """The retry-seam hooks inside the generic Celery task."""

    def __init__(self, task: Any, queue: str | None, priority: int | None, results: bool) -> None:
        super().__init__(with_result=results)
        self.task, self.queue, self.priority = task, queue, priority

    def record(self, request: EnqueueRequest, outcome: Any) -> None:
        """Keep the summary; a retry's SCHEDULED state is stored at once."""
        if outcome.decision.retry:
            # Celery never overwrites a stored SUCCESS, so the SCHEDULED state is stored before
            # the next attempt is sent (and can finish).
            super().record(request, outcome)
            self.task.update_state(task_id=request.run_id, state=SCHEDULED_STATE, meta=self.summary)
        elif self.with_result:
            super().record(request, outcome)

    def requeue(self, request: EnqueueRequest) -> None:
        """Send the generic task again for the next attempt, with an ETA."""
        kwargs = {
            "task": request.task_name,
            "params": request.params_json,
            "run_id": request.run_id,
            "attempt": request.attempt,
            "max_attempts": request.max_attempts or None,
            "queue": self.queue,
            "priority": self.priority,
        }
        if request.queue and request.queue != self.queue:
            kwargs["task_queue"] = request.queue
        self.task.apply_async(
            kwargs=kwargs,
            task_id=request.run_id,
            kwargsrepr=_describe(request.task_name, request.attempt),
            eta=request.run_after,
            queue=self.queue,
            priority=self.priority,
            headers=trace_headers(request),
        )


def trace_headers(request: EnqueueRequest) -> dict[str, str] | None:
    """The message headers carrying the run's W3C trace context (OpenTelemetry)."""
    return {"traceparent": request.trace_context} if request.trace_context else None


def marker(task_name: str, run_id: str, status: TaskStatus, attempt: int = 0) -> dict[str, Any]:
    """The summary stored for a run that has not finished (queued, scheduled or running)."""
    return {
        MARKER: VERSION,
        "run_id": run_id,
        "task": task_name,
        "status": str(status),
        "attempt": attempt,
    }


TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    # Celery's own STARTED record would replace the run's summary with {pid, hostname}: the
    # body stores a summary itself when ``task_track_started`` is on.
    "track_started": False,
    "dgt_bridge": True,
}
"""Options of every Celery task this module registers (``dgt_bridge`` marks them as ours)."""

run_task: Any = shared_task(name=TASK_NAME, **TASK_OPTIONS)(_run_task)
"""The generic Celery task of earlier versions (a ``shared_task``: every Celery app gets it)."""


def register(app: celery.Celery) -> Any:
    """Register the generic task and one Celery task per registered task class on ``app``
    (done when an app is finalised; call it for apps that skip autodiscovery)."""
    for task_class in registry:
        register_task(app, task_class.name)
    return app.tasks[TASK_NAME]


def register_task(app: celery.Celery, name: str) -> Any:
    """The Celery task named ``name`` on ``app``, registered with the shared body if new."""
    existing = app.tasks.get(name)
    if existing is not None:
        return existing
    return app._task_from_fun(_run_task, name=name, **TASK_OPTIONS)


def _register_on_finalize(app: celery.Celery) -> None:
    for task_class in registry:
        if task_class.name not in app._tasks:
            app._task_from_fun(_run_task, name=task_class.name, **TASK_OPTIONS)


def _run_unknown_as_generic(
    sender: Any = None, message: Any = None, name: str = "", id: str = "", **_: Any
) -> None:
    """A worker that does not know a run's task name (a task class its Celery app never saw,
    or none at all) runs it through the generic task: it runs, or fails with
    ``UnknownTaskError`` like on every backend, instead of being dropped by Celery."""
    try:
        _, kwargs, _ = message.decode()
    except (TypeError, ValueError, AttributeError, DecodeError):
        return
    if not isinstance(kwargs, dict) or kwargs.get("task") != name or "run_id" not in kwargs:
        return  # not one of our runs
    eta = message.headers.get("eta")
    try:
        sender.app.send_task(
            TASK_NAME,
            kwargs=kwargs,
            task_id=id,
            queue=kwargs.get("queue") or message.delivery_info.get("routing_key"),
            priority=kwargs.get("priority"),
            eta=datetime.fromisoformat(eta) if isinstance(eta, str) else None,
            kwargsrepr=_describe(name, int(kwargs.get("attempt") or 1)),
            headers=_traceparent_of(message),
        )
    except Exception:  # the message is gone already: say so loudly
        logger.exception("Run %s of unknown task %s could not be re-sent", id, name)


def _traceparent_of(message: Any) -> dict[str, str] | None:
    traceparent = (getattr(message, "headers", None) or {}).get("traceparent")
    return {"traceparent": traceparent} if isinstance(traceparent, str) else None


task_unknown.connect(_run_unknown_as_generic, weak=False)
connect_on_app_finalize(_register_on_finalize)
for _app in list(get_active_apps()):  # apps finalised before this module was imported
    if _app.finalized:
        with _app._finalize_mutex:
            _register_on_finalize(_app)


def _describe(task_name: str, attempt: int) -> str:
    return f"{{task: {task_name!r}, attempt: {attempt}}}"
