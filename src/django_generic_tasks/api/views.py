"""The views of the tasks endpoints: run a task now, start it on the backend, read a run.

The views read and validate the body themselves, once, from JSON against the task's params
model, as ``execute()`` and every backend do (unknown fields rejected at every level): 400 for
a body that is not JSON (too deeply nested included), 422 with field errors otherwise.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from ninja import Status
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.params import functions as param_functions
from pydantic import BaseModel, ValidationError, WithJsonSchema

from ..backends.cloudtasks.push import receive as receive_push
from ..backends.cloudtasks.push import retry_after_header
from ..conf import get_backend, get_settings
from ..core.handles import TaskHandle
from ..core.params import validate_params
from ..core.registry import registry
from ..core.wire import TRACEPARENT_HEADER, meta_key
from ..exceptions import (
    CapacityExceededError,
    EnqueueError,
    InvalidOptionError,
    ResultNotAvailableError,
    UnsupportedOptionError,
)
from ..execution import Attempt, execute
from ..security.auth import auth_for_task
from .access import (
    authorize,
    authorizes,
    checks_objects,
    has_nul,
    is_exposed,
    same_params,
    scoped_key,
)
from .auth import admit, json_body_required, responder
from .limits import LimitRefused, LimitsUnsupported, hold_limits
from .schemas import (
    DetailOut,
    RunStatusOut,
    StartedOut,
    WorkflowRefOut,
    attempts_out,
    envelope_json,
    error_out,
    expose_error_messages,
    http_status,
    jsonable,
    progress_out,
)

logger = logging.getLogger("django_generic_tasks")
TRACEPARENT_META = meta_key(TRACEPARENT_HEADER)

DIRECT_CALL = "http"
"""What a direct call's run shows as ``self.context.backend`` (no backend runs it)."""
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_DELAY = 10 * 366 * 86400
MAX_QUEUE_LENGTH = 100  # TaskRun.queue's max_length
MAX_KEY_LENGTH = 255  # TaskRun.key's max_length


def read_params(model: type[BaseModel], body: bytes) -> BaseModel:
    """``body`` validated as ``model``: ``HttpError`` 400 when it is not JSON, django-ninja's
    ``ValidationError`` (422, field errors under ``body``) when it does not validate."""
    try:
        return validate_params(model, body or b"{}")
    except ValidationError as exc:
        raise body_errors(exc) from None
    except RecursionError:
        raise HttpError(400, "The body is not valid JSON: it is nested too deeply.") from None


def body_errors(exc: ValidationError) -> Exception:
    """The HTTP error for params that do not validate (400 when the body is not JSON)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return HttpError(400, "The body is not valid JSON.")
    return NinjaValidationError([{**error, "loc": ["body", *error["loc"]]} for error in errors])


def make_run_view(task_class: type[Any]) -> Callable[..., Any]:
    """``POST <mount>/<Task.name>``: run the task now and answer its envelope.

    A push queue's delivery (authenticated as the push queue and carrying its
    ``X-CloudTasks-*`` headers) runs under the task's retry policy: 500 when it wants another
    attempt, which the queue makes. Any other call is direct: it runs exactly one attempt, so
    a failure is final (500, ``failed``, ``retried_by`` null) and nothing retries it. Neither
    is stored: ``runs/<id>`` knows only runs started through ``TASKS_BACKEND`` when it keeps
    results.

    Push queues retry every non-2xx answer, and params that do not validate never will, so a
    push delivery with such params, or a body that is not JSON, is run by ``execute()``, which
    fails it for good (200); direct callers get the 422 (400). A direct call's params are
    authorized first (``api.access.authorize``: 403); a push queue's were, when started.
    A direct call of a task with limits is admitted through them (``api.limits``: 429 with
    ``Retry-After`` when no slot or turn is free, 501 when the backend keeps no limits).
    """
    name, model = task_class.name, task_class.params_model
    check_objects = checks_objects(task_class)

    def run_task(request: HttpRequest) -> HttpResponse:
        delivery = receive_push(request, auth_for_task(task_class))
        push, attempt = delivery.push, delivery.attempt
        traceparent = request.META.get(TRACEPARENT_META)
        # A caller's trace context is a parent only from the push queue (or behind a proxy
        # that vouches for it): anyone else gets a span link, never their trace id.
        parent = traceparent is not None and (push or get_settings().trust_traceparent)
        if delivery.errors:
            raise NinjaValidationError(delivery.errors)
        data: BaseModel | bytes
        try:
            data = read_params(model, request.body)
        except (NinjaValidationError, HttpError):
            if not push:
                raise
            data = request.body or b"{}"  # execute() fails the run for good: 200, no retry
        else:
            if check_objects and not push:
                authorize(task_class(data), request)
        release = None
        if not push and task_class.name in registry.limited:
            try:
                release = hold_limits(task_class(data))
            except LimitRefused as exc:
                return _refused(str(exc), 429, exc.retry_after)
            except LimitsUnsupported as exc:
                return _refused(str(exc), 501)
        try:
            outcome = execute(
                Attempt(
                    task_name=name,
                    params=data,
                    run_id=delivery.run_id,
                    attempt=attempt,
                    max_attempts=None if push else attempt,
                    backend=delivery.backend if push else DIRECT_CALL,
                    trace_context=traceparent if parent else None,
                    trace_link=None if parent else traceparent,
                )
            )
        except RecursionError:  # params too deeply nested to validate (tasks' own are caught)
            raise HttpError(400, "The body is not valid JSON: it is nested too deeply.") from None
        except CapacityExceededError as exc:
            logger.warning("Refused to run %s over HTTP: %s", name, exc)
            raise HttpError(503, "Too many runs are still running here; try again later.") from exc
        finally:
            if release is not None:
                release()
        response = HttpResponse(
            envelope_json(outcome, direct=not push),
            status=http_status(outcome, direct=not push),
            content_type=JSON_CONTENT_TYPE,
        )
        wait = retry_after_header(outcome) if push else None
        if wait is not None:  # RetryAfter: Cloud Tasks considers the header (503)
            response["Retry-After"] = wait
        return response

    return run_task


def _refused(message: str, status: int, retry_after: int | None = None) -> HttpResponse:
    """A direct call refused by its task's limits (``api.limits``)."""
    response = HttpResponse(
        json.dumps({"detail": message}), status=status, content_type=JSON_CONTENT_TYPE
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def allowed_queues(task_class: type[Any]) -> set[str]:
    """Queue names ``/start?queue=`` accepts: the task's own, the backend's ``queues`` mapping
    keys, and ``TASKS_API_QUEUES``."""
    allowed = {task_class.queue, *get_settings().api_queues}
    allowed.update(key for key in get_backend().queues if isinstance(key, str))
    return allowed


def check_start_options(task_class: type[Any], key: str | None, queue: str | None) -> None:
    """400 for a key the task does not take over HTTP, or a queue the project does not declare."""
    if key is not None and not getattr(task_class, "api_accepts_key", False):
        raise HttpError(
            400, f"Task {task_class.name!r} does not accept a key over HTTP (api_accepts_key)."
        )
    if queue is not None and (
        len(queue) > MAX_QUEUE_LENGTH or "/" in queue or queue not in allowed_queues(task_class)
    ):
        raise HttpError(
            400,
            f"Queue {queue[:MAX_QUEUE_LENGTH]!r} is not one this project declares for "
            f"{task_class.name!r} (its own queue, the backend's queues, or TASKS_API_QUEUES).",
        )


NUL_REFUSED = "The run store cannot keep NUL characters (\\u0000)."
KEY_REUSED = "This key was already used with other params (keys are idempotency keys)."


def refuse_nul(request: HttpRequest, key: str | None) -> None:
    """422 for a NUL character in the body or the key when the backend cannot keep one."""
    if get_backend().keeps_nul_characters:
        return
    errors = []
    if has_nul(request.body):
        errors.append({"type": "string_nul", "loc": ["body"], "msg": NUL_REFUSED})
    if key is not None and "\x00" in key:
        errors.append({"type": "string_nul", "loc": ["query", "key"], "msg": NUL_REFUSED})
    if errors:
        raise NinjaValidationError(errors)


def key_reused(task: Any, handle: TaskHandle[Any]) -> bool:
    """Whether the run ``handle`` (which holds the key just sent) has other params than
    ``task``'s; ``False`` when the backend cannot tell (``run_params`` gives ``None``)."""
    stored = None if handle.backend is None else handle.backend.run_params(handle.id)
    return stored is not None and not same_params(task.params, stored)


def documented_queues(task_class: type[Any]) -> list[str]:
    """The queues the OpenAPI document offers for ``/start?queue=`` (``allowed_queues`` as the
    router is built, less those ``TASKS_QUEUES`` would refuse)."""
    try:
        queues = allowed_queues(task_class)
        declared = get_settings().queues
    except Exception:  # building the routes never fails on a backend that cannot be built yet
        return [task_class.queue]
    if declared is not None:
        queues &= set(declared)
    return sorted(queue for queue in queues if len(queue) <= MAX_QUEUE_LENGTH and "/" not in queue)


def _query(name: str, kind: type, *metadata: Any, **options: Any) -> inspect.Parameter:
    """An optional keyword query parameter ``name`` of type ``kind`` (django-ninja ``Query``)."""
    param = param_functions.Query(**options)
    annotation: Any = Annotated[kind | None, param, *metadata]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


QUEUE_DESCRIPTION = "A queue this project declares for the task (400 for another)."


def start_signature(task_class: type[Any]) -> inspect.Signature:
    """The query parameters of ``/start`` for ``task_class``, as django-ninja reads and
    documents them: ``key`` only for tasks with ``api_accepts_key``; ``queue`` lists the queues
    the project declares for the task."""
    queues = documented_queues(task_class)
    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        _query("delay", float, ge=0, le=MAX_DELAY, description="Seconds to wait first."),
    ]
    if getattr(task_class, "api_accepts_key", False):
        description = "Deduplication key, scoped to the caller (409 when reused with other params)."
        params.append(
            _query("key", str, min_length=1, max_length=MAX_KEY_LENGTH, description=description)
        )
    enum = WithJsonSchema({"type": "string", "enum": queues, "description": QUEUE_DESCRIPTION})
    params.append(_query("queue", str, enum, min_length=1, description=QUEUE_DESCRIPTION))
    params.append(_query("priority", int, ge=-100, le=100))
    return inspect.Signature(params)


def make_start_view(task_class: type[Any]) -> Callable[..., Any]:
    """``POST <mount>/<Task.name>/start``: hand the task to ``TASKS_BACKEND``; 202 with the id.

    The params are authorized first (``api.access.authorize``: 403). A ``key`` is scoped to
    the caller (``Task.api_key_scope``): the same key from the same caller with the same
    params returns the run that holds it; with other params, 409 (without that run's id). A
    task without ``api_accepts_key`` has no documented ``key``, and a ``key`` sent anyway
    answers 400 (a deduplication the caller counts on is never dropped silently).
    """
    check_objects = checks_objects(task_class)
    accepts_key = bool(getattr(task_class, "api_accepts_key", False))

    def start_task(
        request: HttpRequest,
        *,
        delay: float | None = None,
        key: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> Any:
        params = read_params(task_class.params_model, request.body)
        if not accepts_key:
            key = request.GET.get("key")
        refuse_nul(request, key)
        check_start_options(task_class, key, queue)
        task = task_class(params)
        if check_objects:
            authorize(task, request)
        try:
            handle = task.start(
                delay=None if delay is None else timedelta(seconds=delay),
                key=None if key is None else scoped_key(task, request, key),
                queue=queue,
                priority=priority,
            )
            if key is not None and key_reused(task, handle):
                return Status(409, DetailOut(detail=KEY_REUSED))
        except (InvalidOptionError, UnsupportedOptionError) as exc:
            return Status(400, DetailOut(detail=str(exc)))
        except (EnqueueError, DatabaseError) as exc:
            logger.warning("Could not start %s over HTTP: %s", task_class.name, exc)
            detail = f"Could not start the task ({type(exc).__name__})."
            if expose_error_messages():
                detail = f"{detail[:-1]}: {exc}"
            return Status(503, DetailOut(detail=detail))
        return Status(202, StartedOut(run_id=handle.id, task=handle.name, status=handle.status))

    start_task.__signature__ = start_signature(task_class)  # type: ignore[attr-defined]
    return start_task


@dataclass(frozen=True)
class RunLookup:
    """What ``run_status_guard`` found for ``GET runs/<run_id>``, for ``get_run``."""

    handle: TaskHandle[Any] | None = None
    unavailable: str | None = None


_LOOKUP = "django_generic_tasks_run_lookup"
NO_SUCH_RUN = "No such run is known."


def run_status_guard(run: Callable[..., Any]) -> Callable[..., Any]:
    """Look the run up, then authorize with its task's auth (the global auth when the run, or
    its task, is unknown, which then answers 404 alike), then with its ``api_authorize`` on the
    run's params (404 alike when refused); never 500 for a lookup error."""
    respond = responder(run)

    @functools.wraps(run)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        lookup = _look_up(str(kwargs.get("run_id", "")))
        task_class = None
        if lookup.handle is not None and lookup.handle.name in registry:
            task_class = registry.get(lookup.handle.name)
        if task_class is None or not is_exposed(task_class):  # a task the API does not serve
            task_class = None
            if lookup.handle is not None:
                lookup = RunLookup()
        refused = json_body_required(request, respond) or admit(
            request, auth_for_task(task_class), authenticate=True, respond=respond
        )
        if refused is not None:
            return refused
        handle = lookup.handle
        if (
            task_class is not None
            and handle is not None
            and authorizes(task_class)
            and not may_read(task_class, handle, request)
        ):
            lookup = RunLookup()  # as if unknown: the caller learns nothing of the run
        setattr(request, _LOOKUP, lookup)
        return run(request, *args, **kwargs)

    return guarded


def may_read(task_class: type[Any], handle: TaskHandle[Any], request: HttpRequest) -> bool:
    """Whether the task's ``api_authorize`` admits the caller of ``request`` to the params of
    the run ``handle``; ``False`` also when the backend keeps no params, or they no longer
    validate or load (fail closed)."""
    stored = None if handle.backend is None else handle.backend.run_params(handle.id)
    if stored is None:
        return False
    try:
        authorize(task_class(stored), request)
    except (HttpError, ValidationError):
        return False
    return True


def _look_up(run_id: str) -> RunLookup:
    backend = get_backend()
    if not backend.supports_results:
        return RunLookup(unavailable=f"{type(backend).__name__} does not keep task results.")
    try:
        return RunLookup(handle=backend.get_result(run_id))
    except ResultNotAvailableError as exc:
        return RunLookup(unavailable=str(exc))
    except Exception as exc:  # unknown ids, malformed ids, a foreign result: all "not found"
        logger.info("Run %r not found: %s: %s", run_id, type(exc).__name__, exc)
        return RunLookup()


def get_run(request: HttpRequest, run_id: str) -> Any:
    """Status and result of a run, from ``TASKS_BACKEND`` when it keeps results.

    Known runs are those started through ``TASKS_BACKEND`` (``Task.start()``,
    ``POST <mount>/<Task.name>/start``) while it keeps results (``DatabaseBackend``,
    ``CeleryBackend`` with a result backend, ``DjangoTasksBackend`` when its backend does).
    A run of ``POST <mount>/<Task.name>`` (a direct call or a push queue's delivery) is not
    stored by that call: 404 for a direct call's ``run_id``. 501 when the backend keeps no
    results.
    """
    lookup: RunLookup | None = getattr(request, _LOOKUP, None)
    if lookup is None:  # not through run_status_guard: nothing was authorized
        return Status(404, DetailOut(detail=NO_SUCH_RUN))
    if lookup.unavailable is not None:
        return Status(501, DetailOut(detail=lookup.unavailable))
    handle = lookup.handle
    if handle is None:
        return Status(404, DetailOut(detail=NO_SUCH_RUN))
    return RunStatusOut(
        run_id=handle.id,
        task=handle.name,
        status=handle.status,
        attempts=handle.attempts,
        result=jsonable(handle.result),
        error=error_out(handle.error),
        progress=progress_out(handle.progress),
        history=attempts_out(handle.history),
        workflow=_workflow_of(handle),
    )


def _workflow_of(handle: Any) -> WorkflowRefOut | None:
    backend = handle.backend
    if backend is None or not backend.supports_workflows:
        return None
    found = backend.workflow_of(handle.id)
    if found is None:
        return None
    workflow_id, kind, position, role = found
    return WorkflowRefOut(id=workflow_id, kind=kind, position=position, role=role)


def not_found(request: HttpRequest, rest: str) -> Any:
    """404 for a path under the mount that is no task's endpoint."""
    name = rest.removesuffix("/").removesuffix("/start")
    if name in registry and is_exposed(registry.get(name)):
        detail = (
            f"Task {name!r} is registered, but it was registered after the tasks API built its "
            "URLs, or its name cannot be a URL path, so it has no endpoint. Import task modules "
            "in AppConfig.ready() or an app's tasks.py."
        )
    else:
        detail = f"No task is registered under the name {name!r}."
    return Status(404, DetailOut(detail=detail))
