"""The HTTP layer: a django-ninja router with one endpoint per registered task.

Mount it on your own ``NinjaAPI``::

    api.add_router("/tasks/", django_generic_tasks.api.router)

which gives, for every registered task that is served (``api_exposed``, else
``TASKS_API_EXPOSED_BY_DEFAULT``):

- ``POST <mount>/<Task.name>``: run the task now, through ``execution.execute()``; the body is
  the task's params model. For a push queue's delivery (authenticated as the push queue,
  with its ``X-CloudTasks-*`` headers): 200 with the run's envelope when it succeeded, was
  discarded, or failed for good; 500 when it failed and the task's policy wants another
  attempt, which the queue makes. Any other call is direct and runs one attempt: 200 when it
  succeeded or was discarded, 500 when it failed (final: nothing retries it; it is not
  stored). 422 for invalid params; 404 for an unknown task.
- ``POST <mount>/<Task.name>/start``: hand the task to ``TASKS_BACKEND``; 202 with the run id.
- ``GET <mount>/runs/<run_id>``: status and result of a run started through ``TASKS_BACKEND``
  when it keeps results (404 for a direct call's run id: it is not stored).

Every ``POST`` needs ``Content-Type: application/json`` (415 otherwise). Routes are added when
the router is bound to an API (when ``api.urls`` is built). A task registered after that has
no endpoint: its registration warns, and a request for it answers 404 saying why. Import task
modules at start-up (an app's ``tasks.py`` is autodiscovered).

Modules: ``routes`` (the router), ``views``, ``auth`` (who may call), ``schemas`` (what is
read and answered), ``access`` (exposure, ``api_authorize``, caller-scoped keys), ``markdown``
(docstrings as Markdown for the OpenAPI document), ``checks`` (system checks W301, W302, E306).
"""

from ..backends.cloudtasks.push import (
    CLOUD_TASKS_NAME_HEADER,
    EXECUTION_COUNT_HEADER,
    RETRY_COUNT_HEADER,
    read_run_headers,
)
from ..core.wire import RUN_ID_HEADER
from .auth import TasksAuth
from .routes import TasksRouter, router, warn_late_registration
from .schemas import (
    DetailOut,
    ErrorOut,
    RunOut,
    RunStatusOut,
    StartedOut,
    ValidationErrorOut,
    envelope,
    envelope_json,
    http_status,
)

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
