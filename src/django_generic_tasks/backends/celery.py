"""``CeleryBackend``: runs typed tasks on an existing Celery deployment (Redis or RabbitMQ).

Every task class is a Celery task of its own, named by ``Task.name`` (so Flower,
``celery inspect`` and Celery's logs tell a receipt from a charge); all of them share one body,
whose message carries the task name, the params as JSON, the attempt numbers and the run id
(also used as the Celery task id). The body calls ``execution.execute()``, the same path every
backend uses, and settles the outcome through the retry seam: another attempt is the same
message re-sent with an ETA and ``attempt + 1`` (Celery's own autoretry is not used). What it
stores is the bridge's summary (``backends.bridge``); only results carrying it are read back as
runs. ``django_generic_tasks.run``, the one generic task of earlier versions, stays registered
so messages already queued by them still run.

The worker side is a plain ``celery -A proj worker``: the tasks are registered on every Celery
app when it is finalised (``register``), by Django's app loading (and by
``app.autodiscover_tasks()``) through ``django_generic_tasks.tasks``. The Celery tasks live in
``backends.celery_tasks``, the system checks in ``backends.celery_checks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlparse

from django.core.checks import CheckMessage, Error, Warning

from ..check_ids import CheckId
from ..core.enqueue import EnqueueRequest
from ..core.handles import TaskHandle
from ..core.registry import registry
from ..core.status import ErrorInfo, TaskStatus
from ..exceptions import (
    ConfigurationError,
    EnqueueError,
    MissingDependencyError,
    RunFailedError,
    RunNotFoundError,
)
from .base import BaseBackend
from .bridge import apply_summary, read_summary

try:
    import celery
    from celery.exceptions import SecurityError
    from kombu.exceptions import DecodeError, OperationalError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "CeleryBackend needs Celery: pip install 'django-generic-tasks[celery]' "
        "(and 'celery[redis]' for a Redis broker)."
    ) from exc

from .celery_tasks import (
    QUEUED_STATE,
    SCHEDULED_STATE,
    STARTED_STATE,
    SUMMARY_STATES,
    TASK_NAME,
    TASK_OPTIONS,
    _describe,
    marker,
    register,
    register_task,
    run_task,
    trace_headers,
)

__all__ = [
    "QUEUED_STATE",
    "SCHEDULED_STATE",
    "STARTED_STATE",
    "TASK_NAME",
    "TASK_OPTIONS",
    "CeleryBackend",
    "celery_priority",
    "register",
    "register_task",
    "run_task",
]

CELERY_PRIORITY_LEVELS = 10
"""Celery priorities used: 0..9, the range both Redis and RabbitMQ (``x-max-priority``) take."""


def celery_priority(priority: int, *, lowest_first: bool) -> int:
    """Map our priority (-100..100, higher runs first) onto Celery's 0..9.

    RabbitMQ delivers higher numbers first; Redis (kombu) delivers *lower* numbers first, which
    ``lowest_first`` accounts for.
    """
    top = CELERY_PRIORITY_LEVELS - 1
    level = round((priority + 100) * top / 200)
    return top - level if lowest_first else level


class CeleryBackend(BaseBackend):
    """Sends runs to Celery workers through the Celery app ``app`` (dotted path or instance).

    ``queues`` maps our queue names to Celery queue names; an unmapped name, ``"default"``
    included, is the Celery queue of that name (system check W402 warns when a task's queue
    maps to a Celery queue no route, ``task_queues`` entry or ``task_default_queue`` names).
    Each task is sent as the Celery task ``Task.name``. Priorities map
    onto Celery's 0..9 (see ``celery_priority``; RabbitMQ needs ``task_queue_max_priority``).
    ``key`` is refused: Celery has no deduplication. Status and results can be read back when
    the app has a result backend; then each start stores the run's waiting state first (a
    delayed run always, any run with ``store_waiting``, the default), so an id that is not a run
    of ours is told apart (``store_waiting=False`` saves that write per start: a waiting run
    and an unknown id then both read ``ready``, as Celery cannot tell them). Recommended app
    settings for crash safety: ``task_acks_late=True``, ``task_reject_on_worker_lost=True``,
    ``worker_prefetch_multiplier=1`` (our tasks already set the first two).
    """

    supports_defer = True
    supports_priority = True
    supports_key = False
    supports_retries = True
    enqueues_in_transaction = False
    crash_safe = True
    needs_server = "Redis or RabbitMQ, `celery worker`"
    capability_notes: ClassVar[dict[str, str]] = {
        "supports_results": "with a Celery `result_backend`",
        "supports_priority": "0..9 on the broker",
        "crash_safe": "`acks_late`",
    }

    def __init__(
        self,
        *,
        app: str | celery.Celery,
        queues: dict[str, str] | None = None,
        store_waiting: bool = True,
    ) -> None:
        if not isinstance(app, str | celery.Celery):
            raise ConfigurationError(
                "CeleryBackend(app=...) must be a dotted path to a Celery app, such as "
                "'proj.celery.app', or a Celery instance."
            )
        if queues is not None and not (
            isinstance(queues, dict)
            and all(isinstance(k, str) and isinstance(v, str) and v for k, v in queues.items())
        ):
            raise ConfigurationError(
                "CeleryBackend(queues=...) must map task queue names to Celery queue names."
            )
        self._app_spec = app
        self._app: celery.Celery | None = app if isinstance(app, celery.Celery) else None
        self.queues = dict(queues or {})
        self.store_waiting = bool(store_waiting)
        self._redis_order: bool | None = None

    @property
    def app(self) -> celery.Celery:
        """The Celery app, imported on first use."""
        if self._app is None:
            from django.utils.module_loading import import_string

            try:
                loaded = import_string(str(self._app_spec))
            except ImportError as exc:
                raise ConfigurationError(
                    f"CeleryBackend cannot import the Celery app {self._app_spec!r}: {exc}"
                ) from exc
            if not isinstance(loaded, celery.Celery):
                raise ConfigurationError(
                    f"CeleryBackend(app={self._app_spec!r}) is a {type(loaded).__name__}, "
                    "not a Celery app."
                )
            self._app = loaded
        return self._app

    @property
    def supports_results(self) -> bool:  # type: ignore[override]
        """Whether the Celery app has a result backend (``result_backend``)."""
        return bool(self.app.conf.result_backend) and not self.app.conf.task_ignore_result

    def celery_queue(self, queue: str) -> str:
        """The Celery queue that runs of our queue ``queue`` are sent to."""
        return self.queues.get(queue, queue)

    def _lowest_first(self) -> bool:
        if self._redis_order is None:
            url = self.app.conf.broker_url or ""
            scheme = urlparse(str(url)).scheme
            self._redis_order = scheme in {"redis", "rediss", "sentinel", "redis+socket"}
        return self._redis_order

    def _send(self, request: EnqueueRequest, producer: Any = None) -> None:
        queue = self.celery_queue(request.queue)
        priority = celery_priority(request.priority, lowest_first=self._lowest_first())
        options: dict[str, Any] = {
            "task_id": request.run_id,
            "queue": queue,
            "priority": priority,
            # Shown by Celery's logs and monitors instead of the params, which may be private.
            "kwargsrepr": _describe(request.task_name, request.attempt),
        }
        if request.run_after is not None:
            options["eta"] = request.run_after
        if request.trace_context:
            options["headers"] = trace_headers(request)
        if producer is not None:
            options["producer"] = producer
        app = self.app
        if request.task_name not in app.tasks and request.task_name in registry:
            register_task(app, request.task_name)  # a task class defined after finalisation
        if (self.store_waiting or request.run_after is not None) and self.supports_results:
            self._store_marker(request)
        try:
            kwargs = {
                "task": request.task_name,
                "params": request.params_json,
                "run_id": request.run_id,
                "attempt": request.attempt,
                "max_attempts": request.max_attempts,
                "queue": queue,
                "priority": priority,
            }
            if queue != request.queue:  # mapped: the task's context shows our name
                kwargs["task_queue"] = request.queue
            app.send_task(request.task_name, kwargs=kwargs, **options)
        except OperationalError as exc:
            raise EnqueueError(
                f"Celery could not send task {request.task_name} (run {request.run_id}): {exc}"
            ) from exc

    def _store_marker(self, request: EnqueueRequest) -> None:
        """Store the run's state before its message is sent, so a fast worker's states come
        after it, and ``get_result`` can tell a waiting run from an id that is not ours."""
        status = TaskStatus.SCHEDULED if request.run_after else TaskStatus.READY
        summary = marker(request.task_name, request.run_id, status, request.attempt - 1)
        try:
            self.app.backend.store_result(
                request.run_id, summary, SCHEDULED_STATE if request.run_after else QUEUED_STATE
            )
        except Exception as exc:  # any result backend; nothing was sent, nothing is lost
            raise EnqueueError(
                f"Celery could not store the state of task {request.task_name} "
                f"(run {request.run_id}) in its result backend: {exc}"
            ) from exc

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Send one run to Celery."""
        self._send(request)
        return self.handle_for(request)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Send many runs over one broker connection."""
        with self.app.producer_or_acquire() as producer:
            for request in requests:
                self._send(request, producer)
        return [self.handle_for(request) for request in requests]

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """Read a run's state from the Celery result backend.

        Only runs started through this library are read: a stored result without this
        library's summary (another application's task, a JSON list, garbage) raises
        ``RunNotFoundError`` (a ``LookupError``), and so does an id with nothing stored: every
        run sent through a result backend stores its state (queued, scheduled) before it is
        sent. A started run reads ``running`` when the app sets ``task_track_started``.
        """
        if not self.supports_results:
            return super().get_result(run_id)
        try:
            meta = self.app.backend.get_task_meta(run_id)
        except (DecodeError, SecurityError, TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RunNotFoundError(f"No task run {run_id!r}.") from exc
        if not isinstance(meta, dict):
            raise RunNotFoundError(f"No task run {run_id!r}.")
        state, value = meta.get("status"), meta.get("result")
        handle: TaskHandle[Any] = TaskHandle(
            id=run_id, name="", status=TaskStatus.READY, backend=self
        )
        if isinstance(meta.get("name"), str) and meta["name"] != TASK_NAME:
            handle.name = meta["name"]
        if state == "PENDING":  # nothing stored
            if self.store_waiting:  # every run of ours stored its state when it was sent
                raise RunNotFoundError(f"No task run {run_id!r}.")
            return handle  # Celery cannot tell a waiting run from an unknown id
        if state in SUMMARY_STATES or state == STARTED_STATE:
            summary = read_summary(value, run_id)
            if summary is not None:
                apply_summary(handle, summary)
                return handle
            if state != STARTED_STATE:
                raise RunNotFoundError(f"No task run {run_id!r}.")
        if state == "FAILURE" and isinstance(value, RunFailedError):
            handle.status, handle.error = TaskStatus.FAILED, value.error
            handle.name = value.task_name
            return handle
        name = meta.get("name")
        if name != TASK_NAME and not (isinstance(name, str) and _is_ours(self.app, name)):
            # Started, revoked or failed without our summary: only ``result_extended`` names
            # the task; anything unnamed or named otherwise is not shown.
            raise RunNotFoundError(f"No task run {run_id!r}.")
        if state in {"STARTED", "RETRY"}:
            handle.status = TaskStatus.RUNNING
        elif state == "REVOKED":
            handle.status = TaskStatus.CANCELLED
        elif state == "FAILURE":
            handle.status = TaskStatus.FAILED
            handle.error = _crash_info(value, meta.get("traceback"))
        return handle

    def check(self) -> list[CheckMessage]:
        """Report a Celery app that cannot be imported, queues and task names Celery would
        mishandle (``celery_checks``), and a Redis visibility timeout shorter than the longest
        retry backoff (Redis would hand such a retry out twice)."""
        try:
            self.app  # noqa: B018
        except ConfigurationError as exc:
            return [
                Error(
                    str(exc),
                    hint="Set TASKS_BACKEND_OPTIONS = {'app': 'proj.celery.app'}.",
                    id=CheckId.CELERY_APP_INVALID,
                )
            ]
        from .celery_checks import check_queues

        messages = check_queues(self)
        if not self._lowest_first():
            return messages
        options = self.app.conf.broker_transport_options or {}
        timeout = float(options.get("visibility_timeout", 3600))
        longest = max((task.backoff_max for task in registry if task.max_attempts > 1), default=0)
        if longest < timeout:
            return messages
        return [
            *messages,
            Warning(
                f"The Celery app's Redis visibility_timeout ({timeout:g}s) is not longer than "
                f"the longest retry backoff of a task ({longest:g}s): Redis re-delivers a "
                "message not acknowledged within the visibility timeout, so such a retry "
                "would run twice.",
                hint="Set broker_transport_options = {'visibility_timeout': 43200} (or lower "
                "backoff_max on your tasks).",
                id=CheckId.CELERY_VISIBILITY_TIMEOUT_SHORT,
            ),
        ]

    def __repr__(self) -> str:
        return f"<CeleryBackend app={self._app_spec!r}>"


def _is_ours(app: celery.Celery, name: str) -> bool:
    return bool(getattr(app.tasks.get(name), "dgt_bridge", False))


def _crash_info(value: Any, traceback: Any) -> ErrorInfo:
    """The error of a generic task that crashed outside the task's own error handling."""
    exc_type = type(value)
    return ErrorInfo(
        type=f"{exc_type.__module__}.{exc_type.__qualname__}",
        message=str(value),
        traceback=traceback if isinstance(traceback, str) else "",
    )
