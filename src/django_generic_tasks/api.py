"""The HTTP layer: a django-ninja router with one endpoint per registered task.

Mount it on your own ``NinjaAPI``::

    api.add_router("/tasks/", django_generic_tasks.api.router)

which gives, for every registered task:

- ``POST <mount>/<Task.name>``: run the task now, through ``execution.execute()``; the body is
  the task's params model. 200 with the run's envelope when it succeeded, was discarded, or
  failed for the last time; 500 when it failed and its policy wants another attempt (so a push
  queue such as Cloud Tasks retries); 422 for invalid params; 404 for an unknown task.
- ``POST <mount>/<Task.name>/start``: hand the task to ``TASKS_BACKEND``; 202 with the run id.
- ``GET <mount>/runs/<run_id>``: status and result, on backends that keep results.

Routes are added when the router is bound to an API (when ``api.urls`` is built). A task
registered after that has no endpoint: its registration warns, and a request for it answers
404 saying why. Import task modules at start-up (an app's ``tasks.py`` is autodiscovered).
"""

import logging
import re
import warnings
from datetime import timedelta
from typing import Annotated, Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status
from ninja.errors import AuthenticationError
from ninja.operation import Operation
from pydantic import BaseModel, ValidationError

from .api_schemas import (
    CLOUD_TASKS_NAME_HEADER,
    EXECUTION_COUNT_HEADER,
    RETRY_COUNT_HEADER,
    RUN_ID_HEADER,
    DetailOut,
    ErrorOut,
    RunOut,
    RunStatusOut,
    StartedOut,
    ValidationErrorOut,
    body_model,
    envelope,
    envelope_json,
    error_out,
    http_status,
    is_push_delivery,
    jsonable,
    read_run_headers,
    run_headers_openapi,
)
from .conf import get_backend
from .exceptions import (
    EnqueueError,
    InvalidOptionError,
    ResultNotAvailableError,
    UnsupportedOptionError,
)
from .execution import execute
from .params import validate_params
from .registry import registry
from .security import auth_for_task

logger = logging.getLogger("django_generic_tasks")

__all__ = [
    "CLOUD_TASKS_NAME_HEADER",
    "EXECUTION_COUNT_HEADER",
    "RETRY_COUNT_HEADER",
    "RUN_ID_HEADER",
    "DetailOut",
    "ErrorOut",
    "RunOut",
    "RunStatusOut",
    "StartedOut",
    "TasksAuth",
    "TasksRouter",
    "ValidationErrorOut",
    "envelope",
    "envelope_json",
    "http_status",
    "read_run_headers",
    "router",
    "warn_late_registration",
]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_MAX_DELAY = 10 * 366 * 86400
_UNROUTABLE = re.compile(r"[{}<>]")


def warn_late_registration(task_class: type[Any]) -> None:
    """Warn that ``task_class`` was registered after the router built its routes.

    Classes defined inside a function (``<locals>``, as tests do) are not warned about: no
    other process can import them by name either, so they were never meant to be served.
    """
    if "<locals>" in task_class.__qualname__:
        return
    warnings.warn(
        f"Task {task_class.name!r} was registered after the tasks API router built its URLs, "
        "so it has no HTTP endpoint. Import task modules in AppConfig.ready() or an app's "
        "tasks.py.",
        RuntimeWarning,
        stacklevel=4,  # the ``class`` statement that defined the task
    )


class TasksAuth:
    """The auth of a task's endpoints, resolved per request from the settings.

    The task's ``api_auth`` attribute wins over ``TASKS_API_AUTHENTICATION``; ``None`` is open.
    """

    def __init__(self, task_class: type[Any] | None) -> None:
        self.task_class = task_class

    @property
    def openapi_security_schema(self) -> Any:
        """Bearer in the OpenAPI document when the endpoint uses OIDC or a ninja auth class."""
        try:
            auth = auth_for_task(self.task_class)
        except Exception:
            auth = None
        schema = getattr(auth, "openapi_security_schema", None)
        if schema is None:
            raise AttributeError("openapi_security_schema")
        return schema

    def __call__(self, request: HttpRequest) -> Any:
        """Authenticate ``request``: the configured auth's result, or ``True`` when open."""
        auth = auth_for_task(self.task_class)
        if auth is None:
            return True
        result = auth(request)
        if hasattr(result, "__await__"):
            from asgiref.sync import async_to_sync

            async def wait() -> Any:
                return await result

            result = async_to_sync(wait)()
        return result


def _operation_id(prefix: str, name: str, taken: set[str]) -> str:
    base = f"{prefix}_" + re.sub(r"\W", "_", name)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def _make_run_view(task_class: type[Any], body: type[BaseModel]) -> Any:
    name = task_class.name

    def run_task(request: HttpRequest, params: body) -> Any:  # type: ignore[valid-type]
        attempt, run_id, errors = read_run_headers(request)
        if errors:
            return Status(422, ValidationErrorOut(detail=errors))
        # ``params``: the task's params model, validated from the body as execute() would;
        # ``None`` leaves the body to execute() (push deliveries, or what only ninja accepts).
        data = request.body if params is None else params
        outcome = execute(name, data, run_id=run_id, attempt=attempt)
        return HttpResponse(
            envelope_json(outcome), status=http_status(outcome), content_type=JSON_CONTENT_TYPE
        )

    run_task.__name__ = "run_task"
    run_task.params_model = task_class.params_model  # type: ignore[attr-defined]
    return run_task


class _TaskOperation(Operation):
    """An operation guarded by one ``TasksAuth``, called directly.

    django-ninja's generic loop inspects every auth callback for coroutines on each request;
    ``TasksAuth`` awaits its own result, so that costs time and decides nothing.
    """

    def _run_authentication(self, request: HttpRequest) -> HttpResponse | None:
        callbacks = self.auth_callbacks
        if len(callbacks) != 1 or type(callbacks[0]) is not TasksAuth:
            return super()._run_authentication(request)
        try:
            result = callbacks[0](request)
        except Exception as exc:
            return self.api.on_exception(request, exc)
        if result:
            request.auth = result  # type: ignore[attr-defined]
            return None
        return self.api.on_exception(request, AuthenticationError())


class _RunOperation(_TaskOperation):
    """The run operation: the body is validated once, and push deliveries are never gated.

    The body is validated from JSON against the task's params model as ``execute()`` and
    every backend do (unknown fields rejected at every level), and that instance is run.
    When it does not validate, django-ninja's own body handling answers (400 for a body that
    is not JSON, 422 with field errors); should django-ninja accept it anyway, ``execute()``
    fails the run, as it would on any backend.

    Push queues retry every non-2xx answer, and params that do not validate never will, so for
    deliveries the body is validated by ``execute()`` (which fails such a run for good) rather
    than by django-ninja (which answers 422). Direct callers still get the 422 with field errors.
    """

    def run(self, request: HttpRequest, **kw: Any) -> Any:
        """Authenticate, validate the body once, run (no body gate for push deliveries)."""
        error = self._run_checks(request)
        if error:
            return error
        try:
            params = None
            if not is_push_delivery(request):
                model = self.view_func.params_model  # type: ignore[attr-defined]
                try:
                    params = validate_params(model, request.body)
                except ValidationError:
                    # django-ninja words the 400/422 (the view takes no response argument).
                    self._get_values(request, kw, None)  # type: ignore[arg-type]
            result = self.view_func(request, params=params)
            if isinstance(result, HttpResponse):
                return result
            return self._result_to_response(
                request, result, self.api.create_temporal_response(request)
            )
        except Exception as exc:
            return self.api.on_exception(request, exc)


def _make_start_view(task_class: type[Any], body: type[BaseModel]) -> Any:
    def start_task(
        request: HttpRequest,
        params: body,  # type: ignore[valid-type]
        delay: Annotated[
            float | None, Query(ge=0, le=_MAX_DELAY, description="Seconds to wait first.")
        ] = None,
        key: Annotated[
            str | None, Query(min_length=1, max_length=255, description="Deduplication key.")
        ] = None,
        queue: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
        priority: Annotated[int | None, Query(ge=-100, le=100)] = None,
    ) -> Any:
        task = task_class(validate_params(task_class.params_model, request.body))
        try:
            handle = task.start(
                delay=None if delay is None else timedelta(seconds=delay),
                key=key,
                queue=queue,
                priority=priority,
            )
        except (InvalidOptionError, UnsupportedOptionError) as exc:
            return Status(400, DetailOut(detail=str(exc)))
        except EnqueueError as exc:
            logger.warning("Could not start %s over HTTP: %s", task_class.name, exc)
            return Status(503, DetailOut(detail=str(exc)))
        return Status(202, StartedOut(run_id=handle.id, task=handle.name, status=handle.status))

    return start_task


def get_run(request: HttpRequest, run_id: str) -> Any:
    """Status and result of a run, from ``TASKS_BACKEND`` when it keeps results."""
    backend = get_backend()
    if not backend.supports_results:
        return Status(
            501, DetailOut(detail=f"{type(backend).__name__} does not keep task results.")
        )
    try:
        handle = backend.get_result(run_id)
    except ResultNotAvailableError as exc:
        return Status(501, DetailOut(detail=str(exc)))
    except (LookupError, ObjectDoesNotExist, DjangoValidationError, ValueError):
        return Status(404, DetailOut(detail=f"No run {run_id!r} is known."))
    return RunStatusOut(
        run_id=handle.id,
        task=handle.name,
        status=handle.status,
        attempts=handle.attempts,
        result=jsonable(handle.result),
        error=error_out(handle.error),
    )


def not_found(request: HttpRequest, rest: str) -> Any:
    """404 for a path under the mount that is no task's endpoint."""
    name = rest.removesuffix("/").removesuffix("/start")
    if name in registry:
        detail = (
            f"Task {name!r} is registered, but it was registered after the tasks API built its "
            "URLs, or its name cannot be a URL path, so it has no endpoint. Import task modules "
            "in AppConfig.ready() or an app's tasks.py."
        )
    else:
        detail = f"No task is registered under the name {name!r}."
    return Status(404, DetailOut(detail=detail))


_ERRORS = {
    400: DetailOut,
    401: DetailOut,
    403: DetailOut,
    404: DetailOut,
    422: ValidationErrorOut,
    503: DetailOut,
}


class TasksRouter(Router):
    """A ``Router`` that adds an operation per registered task when it is mounted."""

    def __init__(self) -> None:
        super().__init__(tags=["tasks"])
        self.mounted = False
        """Whether an API has built URLs from this router (for the system check)."""
        self._served: set[str] = set()
        self._operation_ids: set[str] = set()

    def build_routers(self, prefix: str, *args: Any, **kwargs: Any) -> Any:
        """Add the registry's tasks, then let django-ninja bind the routes to the API."""
        frozen, self._frozen = getattr(self, "_frozen", False), False
        try:
            self.sync()
        finally:
            self._frozen = frozen
        self.mounted = True
        registry.urls_built = True
        return super().build_routers(prefix, *args, **kwargs)

    def sync(self) -> None:
        """Add operations for registered tasks that have none yet; keep the catch-all last."""
        for path in ("runs/{run_id}", "{path:rest}"):
            self.path_operations.pop(path, None)
        for task_class in sorted(registry, key=lambda t: t.name):
            if task_class.name not in self._served:
                self._add_task(task_class)
        self.add_api_operation(
            "runs/{run_id}",
            ["GET"],
            get_run,
            auth=TasksAuth(None),
            response={200: RunStatusOut, **_ERRORS, 501: DetailOut},
            operation_id="get_task_run",
            summary="Status and result of a run",
            tags=["task runs"],
        )
        self.add_api_operation(
            "{path:rest}",
            ["GET", "POST", "PUT", "PATCH", "DELETE"],
            not_found,
            auth=TasksAuth(None),
            response={404: DetailOut, 401: DetailOut, 403: DetailOut, 503: DetailOut},
            include_in_schema=False,
            url_name="tasks-not-found",
        )

    def _add_task(self, task_class: type[Any]) -> None:
        name = task_class.name
        if _UNROUTABLE.search(name):
            logger.warning("Task %r has no HTTP endpoint: its name has one of {}<>.", name)
            return
        self._served.add(name)
        body = body_model(task_class.params_model)
        doc = (task_class.__doc__ or "").strip() or None
        auth = TasksAuth(task_class)
        self.add_api_operation(
            name,
            ["POST"],
            _make_run_view(task_class, body),
            auth=auth,
            response={200: RunOut, 500: RunOut, **_ERRORS},
            operation_id=_operation_id("run", name, self._operation_ids),
            summary=doc.splitlines()[0] if doc else f"Run {name}",
            description=doc,
            url_name=f"run-{name}",
            openapi_extra=run_headers_openapi(),
        )
        # django-ninja's PathView always builds a plain Operation: give ours their run rules.
        self.path_operations[name].operations[-1].__class__ = _RunOperation

        self.add_api_operation(
            f"{name}/start",
            ["POST"],
            _make_start_view(task_class, body),
            auth=auth,
            response={202: StartedOut, **_ERRORS},
            operation_id=_operation_id("start", name, self._operation_ids),
            summary=f"Start {name} on TASKS_BACKEND (202 with the run id)",
            description=doc,
            url_name=f"start-{name}",
        )
        self.path_operations[f"{name}/start"].operations[-1].__class__ = _TaskOperation


router = TasksRouter()
"""Mount it: ``api.add_router("/tasks/", django_generic_tasks.api.router)``."""
