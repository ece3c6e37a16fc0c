"""Django system checks: the settings are valid and the backend is usable."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from .exceptions import ConfigurationError


@register(Tags.compatibility)
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report invalid ``TASKS_*`` settings or backend, then the backend's own checks."""
    from .conf import get_backend, reset

    reset()
    try:
        backend = get_backend()
    except ConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint=getattr(exc, "hint", None)
                or "See the Configuration section of the django-generic-tasks README.",
                id="django_generic_tasks.E001",
            )
        ]
    return list(backend.check())
