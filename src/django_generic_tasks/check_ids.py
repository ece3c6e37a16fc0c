"""Every system check id of django-generic-tasks, in one table.

Ids read ``django_generic_tasks.<E|W><number>``; the hundreds say the part of the package:

| range | part |
| --- | --- |
| 0xx | core settings (``TASKS_BACKEND``, ``TASKS_BACKEND_OPTIONS``) |
| 1xx | ``DatabaseBackend`` and the worker |
| 2xx | ``CloudTasksBackend`` |
| 3xx | the HTTP API and its authentication |
| 4xx | the Celery and ``django.tasks`` bridges |
| 5xx | periodic tasks (``TASKS_SCHEDULES``, schedules and the backend firing them) |

Silence one with ``SILENCED_SYSTEM_CHECKS = ["django_generic_tasks.W301"]``.
"""

from __future__ import annotations

from enum import StrEnum

PREFIX = "django_generic_tasks."


class CheckId(StrEnum):
    """The id of each check message, by what it reports."""

    BACKEND_INVALID = PREFIX + "E001"
    BACKEND_DEPENDENCY_MISSING = PREFIX + "E002"
    BACKEND_TASK_QUEUE_UNDECLARED = PREFIX + "E003"
    BACKEND_IMMEDIATE_WITHOUT_DEBUG = PREFIX + "W001"

    DATABASE_APP_NOT_INSTALLED = PREFIX + "E100"
    DATABASE_ALIAS_UNKNOWN = PREFIX + "E101"
    DATABASE_UNSUPPORTED = PREFIX + "E102"
    DATABASE_MIGRATIONS_UNAPPLIED = PREFIX + "W101"

    CLOUDTASKS_DEPENDENCY_MISSING = PREFIX + "E201"
    CLOUDTASKS_OPTION_MISSING = PREFIX + "E202"
    CLOUDTASKS_EMULATOR_WITHOUT_DEBUG = PREFIX + "E203"
    CLOUDTASKS_AUDIENCE_REJECTED = PREFIX + "W201"
    CLOUDTASKS_ACCOUNT_REJECTED = PREFIX + "W202"
    CLOUDTASKS_BASE_URL_UNROUTED = PREFIX + "W203"
    CLOUDTASKS_PUSH_QUEUE_UNAUTHENTICATED = PREFIX + "W204"

    API_AUTH_INVALID = PREFIX + "E301"
    OIDC_AUDIENCE_MISSING = PREFIX + "E302"
    OIDC_SERVICE_ACCOUNTS_MISSING = PREFIX + "E303"
    OIDC_DEPENDENCY_MISSING = PREFIX + "E304"
    OIDC_CERTS_URL_INSECURE = PREFIX + "E305"
    API_OPEN_NOT_CHOSEN = PREFIX + "E306"
    API_ENDPOINTS_OPEN = PREFIX + "W301"
    API_MODEL_REF_UNAUTHORIZED = PREFIX + "W302"

    CELERY_APP_INVALID = PREFIX + "E401"
    CELERY_VISIBILITY_TIMEOUT_SHORT = PREFIX + "W401"
    CELERY_QUEUE_UNROUTED = PREFIX + "W402"
    CELERY_TASK_NAME_TAKEN = PREFIX + "E402"
    DJANGO_TASKS_ALIAS_INVALID = PREFIX + "E411"

    SCHEDULES_INVALID = PREFIX + "E501"
    SCHEDULES_UNSUPPORTED_BY_BACKEND = PREFIX + "E502"
