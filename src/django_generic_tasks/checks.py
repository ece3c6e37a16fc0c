"""Django system checks: the settings are valid and the backend is usable.

| id | problem |
| --- | --- |
| ``django_generic_tasks.E001`` | invalid ``TASKS_*`` settings: a bad path, an unknown option... |
| ``django_generic_tasks.E002`` | the backend needs an optional dependency that is not installed |
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from .check_ids import CheckId
from .exceptions import ConfigurationError, MissingDependencyError

CONFIG_HINT = "See the Settings page of the django-generic-tasks documentation."
MISSING_HINT = (
    "Install the extra named in the message, e.g. pip install 'django-generic-tasks[celery]', "
    "or choose another TASKS_BACKEND."
)


@register(Tags.compatibility)
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report invalid ``TASKS_*`` settings or backend, then the backend's own checks.

    It uses the backend ``start()`` would use (settings changes reset it), without closing it.
    """
    from .conf import get_backend

    try:
        backend = get_backend()
    except MissingDependencyError as exc:
        hint = getattr(exc, "hint", None) or MISSING_HINT
        return [Error(str(exc), hint=hint, id=CheckId.BACKEND_DEPENDENCY_MISSING)]
    except ConfigurationError as exc:
        hint = getattr(exc, "hint", None) or CONFIG_HINT
        return [Error(str(exc), hint=hint, id=CheckId.BACKEND_INVALID)]
    return list(backend.check())
