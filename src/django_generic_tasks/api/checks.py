"""System check W301: the tasks API is mounted with endpoints anyone can call."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

from ..check_ids import CheckId
from ..conf import get_settings
from ..exceptions import ConfigurationError
from ..registry import registry
from ..security.auth import auth_spec_safe
from .routes import router

RUNS_ENDPOINT = "GET runs/<run_id> (runs of tasks without api_auth)"


@register(Tags.security)
def check_open_api(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn, when ``DEBUG`` is off, about open task endpoints, the run status endpoint included."""
    if settings.DEBUG or not _router_mounted():
        return []
    try:
        global_open = get_settings().api_authentication is None
    except ConfigurationError:
        return []  # reported by check_backend
    open_endpoints = sorted(t.name for t in registry if auth_spec_safe(t) is None)
    if global_open:
        open_endpoints.append(RUNS_ENDPOINT)
    if not open_endpoints:
        return []
    return [
        Warning(
            "The tasks API is mounted without authentication, so anyone who can reach it can "
            f"call these endpoints: {', '.join(open_endpoints)}.",
            hint="Set TASKS_API_AUTHENTICATION = 'oidc' (Cloud Tasks) or a dotted path to a "
            "django-ninja auth class, or set api_auth on each task.",
            id=CheckId.API_ENDPOINTS_OPEN,
        )
    ]


def _router_mounted() -> bool:
    from django.urls import get_resolver

    try:
        get_resolver().url_patterns  # noqa: B018  (imports the URLconf, which mounts the router)
    except Exception:
        return False  # Django's own URL checks report a broken URLconf
    return router.mounted
