"""Which auth guards a task's endpoints: ``TASKS_API_AUTHENTICATION`` or the task's ``api_auth``.

Each is one of:

- ``None``: open endpoints (system check W301 warns; E306 under ``check --deploy`` unless
  written in settings);
- ``"oidc"``: a Google-signed OIDC ID token in ``Authorization: Bearer ...``, as Cloud Tasks
  sends it, verified by ``GoogleOIDCAuth``;
- a django-ninja auth class or instance, a callable ``(request) -> truthy``, or a dotted path
  to any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.module_loading import import_string
from ninja.security import APIKeyHeader, APIKeyQuery, HttpBasicAuth, HttpBearer

from ..conf import get_settings
from ..exceptions import ConfigurationError
from .oidc import GoogleOIDCAuth

OIDC = "oidc"
INHERIT: Any = object()
"""Marker: a task without its own ``api_auth`` uses ``TASKS_API_AUTHENTICATION``."""

AuthCallable = Callable[[HttpRequest], Any]

_resolved: dict[Any, AuthCallable | None] = {}
_HEADER_CREDENTIALS = (HttpBearer, HttpBasicAuth, APIKeyHeader, APIKeyQuery)


def resolve_auth(spec: Any) -> AuthCallable | None:
    """Turn a ``TASKS_API_AUTHENTICATION`` / ``api_auth`` value into a callable (or ``None``)."""
    try:
        key = (spec, hash(spec))
    except TypeError:
        key = ("unhashable", id(spec))
    if key in _resolved:
        return _resolved[key]
    auth = _resolve(spec)
    _resolved[key] = auth
    return auth


def _resolve(spec: Any) -> AuthCallable | None:
    if spec is None:
        return None
    if spec == OIDC:
        return GoogleOIDCAuth()
    target = spec
    if isinstance(spec, str):
        try:
            target = import_string(spec)
        except ImportError as exc:
            raise ConfigurationError(
                f"TASKS_API_AUTHENTICATION {spec!r} cannot be imported: {exc}. Use None, "
                "'oidc', or a dotted path to a django-ninja auth class or a callable."
            ) from exc
    if isinstance(target, type):
        try:
            target = target()
        except TypeError as exc:
            raise ConfigurationError(
                f"The API auth class {target.__name__} cannot be built without arguments: {exc}"
            ) from exc
    if not callable(target):
        raise ConfigurationError(
            f"TASKS_API_AUTHENTICATION {spec!r} is not callable: use None, 'oidc', or a "
            "django-ninja auth class or a callable (request) -> truthy."
        )
    return target  # type: ignore[no-any-return]


def auth_spec_for_task(task_class: type[Any] | None) -> Any:
    """The auth setting that applies to ``task_class`` (its ``api_auth`` or the global one)."""
    spec = INHERIT if task_class is None else getattr(task_class, "api_auth", INHERIT)
    if spec is INHERIT:
        spec = get_settings().api_authentication
    return spec


def auth_spec_safe(task_class: type[Any]) -> Any:
    """``auth_spec_for_task`` for checks: never raises."""
    try:
        return auth_spec_for_task(task_class)
    except ConfigurationError:
        return "invalid"


def auth_for_task(task_class: type[Any] | None) -> AuthCallable | None:
    """The auth callable that guards ``task_class``'s endpoints (``None``: open)."""
    return resolve_auth(auth_spec_for_task(task_class))


def may_use_session(auth: AuthCallable) -> bool:
    """Whether ``auth`` may accept a request for its session cookie (so CSRF applies).

    django-ninja's header and query credential classes (Bearer, Basic, API key) and OIDC
    never look at cookies; a plain callable (e.g. one checking ``request.user``) may.
    """
    return not isinstance(auth, _HEADER_CREDENTIALS)


def authenticates_push_queue(auth: AuthCallable | None) -> bool:
    """Whether requests ``auth`` accepts come from the push queue (``GoogleOIDCAuth``)."""
    return bool(getattr(auth, "authenticates_push_queue", False))


def clear_resolved() -> None:
    """Forget resolved auth callables (the settings changed)."""
    _resolved.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("TASKS_"):
        _resolved.clear()
