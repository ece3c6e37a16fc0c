"""The router: one operation per registered task, added when it is first mounted."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from typing import Any

from ninja import Router
from ninja.decorators import decorate_view

from ..conf import get_settings
from ..core.registry import registry
from ..core.wire import (
    NOT_FOUND_URL_NAME,
    RUN_STATUS_URL_NAME,
    RUN_URL_NAME_PREFIX,
    START_URL_NAME_PREFIX,
)
from ..exceptions import ConfigurationError
from ..security.auth import auth_for_task, auth_spec_safe, authenticates_push_queue
from .access import is_exposed
from .auth import TasksAuth, task_guard
from .markdown import markdown_descriptions, rst_to_markdown
from .schemas import (
    DetailOut,
    RunStatusOut,
    StartedOut,
    ValidationErrorOut,
    request_body_openapi,
    run_headers_openapi,
    run_out_for,
)
from .views import get_run, make_run_view, make_start_view, not_found, run_status_guard

logger = logging.getLogger("django_generic_tasks")

_UNROUTABLE = re.compile(r"[{}<>]")


def _limits_errors(task_class: type[Any]) -> dict[int, Any]:
    """A direct call of a task with limits may be refused by them (``api.limits``): 429 (no
    slot or turn free, with ``Retry-After``) or 501 (the backend keeps no limits)."""
    limited = task_class.concurrency_limit is not None or task_class.rate_limit is not None
    return {429: DetailOut, 501: DetailOut} if limited else {}


_ERRORS = {
    400: DetailOut,
    401: DetailOut,
    403: DetailOut,
    404: DetailOut,
    415: DetailOut,
    422: ValidationErrorOut,
    503: DetailOut,
}

# The run a start made is read at runs/{run_id} (clients and fuzzers follow the link).
_RUN_LINK = {
    "responses": {
        202: {
            "links": {
                "GetRun": {
                    "operationId": "get_task_run",
                    "parameters": {"run_id": "$response.body#/run_id"},
                    "description": "Status and result of the run just started.",
                }
            }
        }
    }
}


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


def _operation_id(prefix: str, name: str, taken: set[str]) -> str:
    base = f"{prefix}_" + re.sub(r"\W", "_", name)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def _guarded(view: Callable[..., Any], guard: Callable[..., Any]) -> Callable[..., Any]:
    """``view`` with ``guard`` around its operation (django-ninja's ``decorate_view``)."""
    return decorate_view(guard)(view)


class TasksRouter(Router):
    """A ``Router`` that adds an operation per registered task when it is first mounted.

    Only exposed tasks get operations (``api_exposed``, else ``TASKS_API_EXPOSED_BY_DEFAULT``).

    Mount it as many times as you like; the operations are made once, from the tasks
    registered by then, and an operation carries django-ninja auth (``TasksAuth``, shown in the
    OpenAPI document) when its task's auth was configured at that time.
    """

    def __init__(self) -> None:
        super().__init__(tags=["tasks"])
        self.mounted = False
        """Whether an API has built URLs from this router (for the system check)."""
        self._operation_ids: set[str] = set()

    def build_routers(self, prefix: str, *args: Any, **kwargs: Any) -> Any:
        """Add the registry's tasks (first mount only), then let django-ninja bind the routes."""
        if not self.mounted:
            self._add_operations()
            self.mounted = True
            registry.on_late_registration(warn_late_registration)
            registry.urls_built = True
        return super().build_routers(prefix, *args, **kwargs)

    def _add_operations(self) -> None:
        for task_class in sorted(registry, key=lambda t: t.name):
            if is_exposed(task_class):
                self._add_task(task_class)

        def run_status(request: Any, run_id: str) -> Any:
            return get_run(request, run_id)

        self.add_api_operation(
            "runs/{run_id}",
            ["GET"],
            _guarded(run_status, run_status_guard),
            auth=None,  # authorized by run_status_guard, with the auth of the run's task
            response={200: RunStatusOut, **_ERRORS, 501: DetailOut},
            operation_id="get_task_run",
            summary="Status and result of a run",
            description=rst_to_markdown(get_run.__doc__),
            tags=["task runs"],
            url_name=RUN_STATUS_URL_NAME,
        )

        def catch_all(request: Any, rest: str) -> Any:
            return not_found(request, rest)

        protected = auth_spec_safe_global() is not None
        self.add_api_operation(
            "{path:rest}",
            ["GET", "POST", "PUT", "PATCH", "DELETE"],
            _guarded(catch_all, task_guard(None, ninja_auth=protected)),
            auth=TasksAuth(None) if protected else None,
            response={
                404: DetailOut,
                401: DetailOut,
                403: DetailOut,
                415: DetailOut,
                503: DetailOut,
            },
            include_in_schema=False,
            url_name=NOT_FOUND_URL_NAME,
        )

    def _add_task(self, task_class: type[Any]) -> None:
        name = task_class.name
        if _UNROUTABLE.search(name):
            logger.warning("Task %r has no HTTP endpoint: its name has one of {}<>.", name)
            return
        doc = rst_to_markdown(task_class.__doc__) or None  # Swagger/ReDoc render Markdown
        protected = auth_spec_safe(task_class) is not None
        auth = TasksAuth(task_class) if protected else None
        guard = task_guard(task_class, ninja_auth=protected)
        body = markdown_descriptions(request_body_openapi(task_class.params_model))
        run_id = _operation_id("run", name, self._operation_ids)
        envelope = run_out_for(task_class, f"RunOut_{run_id.removeprefix('run_')}")
        self.add_api_operation(
            name,
            ["POST"],
            _guarded(make_run_view(task_class), guard),
            auth=auth,
            response={200: envelope, 500: envelope, **_ERRORS, **_limits_errors(task_class)},
            operation_id=run_id,
            summary=doc.splitlines()[0] if doc else f"Run {name}",
            description=doc,
            url_name=RUN_URL_NAME_PREFIX + name,
            openapi_extra={**run_headers_openapi(push_queue=pushes(task_class)), **body},
        )
        self.add_api_operation(
            f"{name}/start",
            ["POST"],
            _guarded(make_start_view(task_class), guard),
            auth=auth,
            response={202: StartedOut, **_ERRORS, 409: DetailOut},
            operation_id=_operation_id("start", name, self._operation_ids),
            summary=f"Start {name} on TASKS_BACKEND (202 with the run id)",
            description=doc,
            url_name=START_URL_NAME_PREFIX + name,
            openapi_extra={**body, **_RUN_LINK},
        )


def pushes(task_class: type[Any]) -> bool:
    """Whether ``task_class``'s endpoints authenticate the push queue (so its ``X-CloudTasks-*``
    and ``X-Task-Run-Id`` headers are read); ``False`` when its auth cannot be built."""
    try:
        return authenticates_push_queue(auth_for_task(task_class))
    except ConfigurationError:
        return False


def auth_spec_safe_global() -> Any:
    """The global auth setting, for building routes: never raises (``"invalid"`` instead)."""
    try:
        return get_settings().api_authentication
    except ConfigurationError:
        return "invalid"


router = TasksRouter()
"""Mount it: ``api.add_router("/tasks/", django_generic_tasks.api.router)``."""
