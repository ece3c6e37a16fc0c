"""System checks of the mounted tasks API: W301 and E306 (open endpoints), W302 (model refs).

- W301, in every mode: endpoints anyone can call (``DEBUG`` or not: a project learns it while
  it is still being built).
- E306, under ``manage.py check --deploy`` only: endpoints open because nothing was chosen
  (``TASKS_API_AUTHENTICATION`` unset and no ``api_auth``). Writing
  ``TASKS_API_AUTHENTICATION = None`` in settings (or ``api_auth = None`` on the task) says the
  openness is meant.
- W302: a task with a ``ModelRef`` param served over HTTP without ``api_authorize``: any caller
  the auth admits may name any row.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..check_ids import CheckId
from ..conf import get_settings
from ..core.registry import registry
from ..exceptions import ConfigurationError
from ..security.auth import INHERIT, auth_for_task, auth_spec_safe, authenticates_push_queue
from .access import authorizes, is_exposed
from .routes import router

RUNS_ENDPOINT = "GET runs/<run_id> (runs of tasks without api_auth)"
AUTH_HINT = (
    "Set TASKS_API_AUTHENTICATION = 'oidc' (Cloud Tasks) or a dotted path to a django-ninja "
    "auth class, or set api_auth on each task; api_exposed = False (or "
    "TASKS_API_EXPOSED_BY_DEFAULT = False) keeps tasks off the API."
)


def _served() -> list[type[Any]] | None:
    """The tasks the mounted router serves; ``None`` when it is not mounted or the settings
    are invalid (``check_backend`` reports those)."""
    if not _router_mounted():
        return None
    try:
        get_settings()
    except ConfigurationError:
        return None
    return [t for t in registry if is_exposed(t)]


@register(Tags.security)
def check_open_api(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W301: the open task endpoints, the run status endpoint included, in every mode."""
    served = _served()
    if served is None:
        return []
    open_endpoints = sorted(t.name for t in served if auth_spec_safe(t) is None)
    if get_settings().api_authentication is None:
        open_endpoints.append(RUNS_ENDPOINT)
    if not open_endpoints:
        return []
    return [
        Warning(
            "The tasks API is mounted without authentication, so anyone who can reach it can "
            f"call these endpoints: {', '.join(open_endpoints)}.",
            hint=AUTH_HINT,
            id=CheckId.API_ENDPOINTS_OPEN,
        )
    ]


@register(Tags.security, deploy=True)
def check_open_api_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E306 (``check --deploy``): endpoints open only because no authentication was chosen."""
    served = _served()
    if served is None or hasattr(settings, "TASKS_API_AUTHENTICATION"):
        return []
    unchosen = sorted(t.name for t in served if getattr(t, "api_auth", INHERIT) is INHERIT)
    if not unchosen:
        return []
    return [
        Error(
            "The tasks API is mounted and TASKS_API_AUTHENTICATION is not set, so anyone who "
            f"can reach it can call these endpoints: {', '.join(unchosen)}, and {RUNS_ENDPOINT}.",
            hint=AUTH_HINT + " If open endpoints are what you want, write "
            "TASKS_API_AUTHENTICATION = None in your settings.",
            id=CheckId.API_OPEN_NOT_CHOSEN,
        )
    ]


@register(Tags.security)
def check_model_refs_authorized(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W302: served tasks with ``ModelRef`` params and no ``api_authorize``."""
    served = _served()
    if served is None:
        return []
    return [
        Warning(
            f"Task {t.name!r} takes a ModelRef param over HTTP without api_authorize, so any "
            "caller its auth admits may make it load any row.",
            hint="Define api_authorize(self, request) -> bool on the task (self.params holds "
            "the loaded rows), or set api_exposed = False.",
            obj=t,
            id=CheckId.API_MODEL_REF_UNAUTHORIZED,
        )
        for t in sorted(served, key=lambda t: t.name)
        if getattr(t, "_has_model_refs", False) and not authorizes(t) and not _push_only(t)
    ]


def _push_only(task_class: type[Any]) -> bool:
    """Whether only the push queue can call the task (its runs were authorized when started)."""
    try:
        return authenticates_push_queue(auth_for_task(task_class))
    except ConfigurationError:
        return False


def _router_mounted() -> bool:
    from django.urls import get_resolver

    try:
        get_resolver().url_patterns  # noqa: B018  (imports the URLconf, which mounts the router)
    except Exception:
        return False  # Django's own URL checks report a broken URLconf
    return router.mounted
