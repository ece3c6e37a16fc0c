"""Settings: read lazily from ``django.conf.settings``, validated, re-read on ``setting_changed``.

| setting | meaning | default |
| --- | --- | --- |
| ``TASKS_BACKEND`` | dotted path, class or instance of a backend | ``ImmediateBackend`` |
| ``TASKS_BACKEND_OPTIONS`` | keyword arguments for the backend's constructor | ``{}`` |
| ``TASKS_API_AUTHENTICATION`` | ``None``, ``"oidc"``, or a dotted path to auth | ``None`` |
| ``TASKS_OIDC_AUDIENCE`` | the ``aud`` that OIDC tokens must carry | ``None`` |
| ``TASKS_OIDC_SERVICE_ACCOUNTS`` | allowed ``email`` claims | ``[]`` |
| ``TASKS_OIDC_CERTS_URL`` | where Google's signing certificates are fetched | Google's v1 certs |
| ``TASKS_OIDC_CLOCK_SKEW`` | seconds of clock skew tolerated on ``exp``/``iat`` | ``10`` |
| ``TASKS_API_EXPOSE_ERROR_MESSAGES`` | error bodies carry exception messages | ``False`` |
| ``TASKS_QUEUES`` | the project's queues: ``start(queue=...)`` refuses others | ``None`` (any) |
| ``TASKS_API_QUEUES`` | more queue names ``POST <task>/start?queue=`` accepts | ``[]`` |
| ``TASKS_API_EXPOSED_BY_DEFAULT`` | tasks get endpoints unless ``api_exposed = False`` | ``True`` |
| ``TASKS_MAX_ABANDONED_THREADS`` | timed-out sync runs left running, then refuse | ``8`` |
| ``TASKS_TRUST_PUSH_HEADERS`` | a proxy authenticates the push queue: believe push | ``False`` |
|  | headers of admitted requests (check ``django_generic_tasks.W204``) | |
| ``TASKS_TRUST_TRACEPARENT`` | continue direct callers' ``traceparent`` (else a link) | ``False`` |
| ``TASKS_MIDDLEWARE`` | attempt middleware (dotted paths), outermost first | ``[]`` |
| ``TASKS_SCHEDULES`` | periodic tasks for tasks you cannot edit (``schedules.registry``, | ``{}`` |
|  | checked by ``django_generic_tasks.E501``, read when schedulers start) | |
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .exceptions import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from .backends.base import Backend

DEFAULT_BACKEND = "django_generic_tasks.backends.ImmediateBackend"
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


class TasksSettings(BaseModel):
    """The validated ``TASKS_*`` settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    backend: Any = Field(default=DEFAULT_BACKEND, alias="TASKS_BACKEND")
    backend_options: dict[str, Any] = Field(default_factory=dict, alias="TASKS_BACKEND_OPTIONS")
    api_authentication: Any = Field(default=None, alias="TASKS_API_AUTHENTICATION")
    oidc_audience: str | None = Field(default=None, alias="TASKS_OIDC_AUDIENCE")
    oidc_service_accounts: list[str] = Field(
        default_factory=list, alias="TASKS_OIDC_SERVICE_ACCOUNTS"
    )
    oidc_certs_url: str = Field(default=GOOGLE_CERTS_URL, alias="TASKS_OIDC_CERTS_URL")
    oidc_clock_skew: int = Field(default=10, ge=0, le=600, alias="TASKS_OIDC_CLOCK_SKEW")
    api_expose_error_messages: bool = Field(
        default=False, alias="TASKS_API_EXPOSE_ERROR_MESSAGES", strict=True
    )
    api_queues: list[str] = Field(default_factory=list, alias="TASKS_API_QUEUES")
    api_exposed_by_default: bool = Field(
        default=True, alias="TASKS_API_EXPOSED_BY_DEFAULT", strict=True
    )
    queues: tuple[str, ...] | None = Field(default=None, alias="TASKS_QUEUES")
    max_abandoned_threads: int = Field(default=8, ge=0, alias="TASKS_MAX_ABANDONED_THREADS")
    trust_push_headers: bool = Field(default=False, alias="TASKS_TRUST_PUSH_HEADERS", strict=True)
    """Believe push queue headers (attempt, run id) from every admitted request: for
    deployments whose proxy lets only the push queue through (Cloud Run IAM, IAP)."""
    trust_traceparent: bool = Field(default=False, alias="TASKS_TRUST_TRACEPARENT", strict=True)
    """Continue a direct caller's ``traceparent`` (a proxy in front sets or checks it);
    otherwise only the push queue's is continued, a caller's is a span link."""
    middleware: tuple[str, ...] = Field(default=(), alias="TASKS_MIDDLEWARE")


_SETTING_NAMES = frozenset(
    str(info.alias) for info in TasksSettings.model_fields.values() if info.alias
)
_lock = threading.RLock()
_settings: TasksSettings | None = None
_backend: Backend | None = None
_backend_overrides: list[Backend] = []


def get_settings() -> TasksSettings:
    """Return the validated ``TASKS_*`` settings (``ConfigurationError`` when invalid)."""
    global _settings
    current = _settings
    if current is not None:
        return current
    from django.conf import settings

    raw = {name: getattr(settings, name) for name in _SETTING_NAMES if hasattr(settings, name)}
    if raw.get("TASKS_BACKEND") is None:
        raw.pop("TASKS_BACKEND", None)
    if raw.get("TASKS_BACKEND_OPTIONS") is None:
        raw.pop("TASKS_BACKEND_OPTIONS", None)
    try:
        current = TasksSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{error['loc'][0]}: {error['msg']}" for error in exc.errors(include_url=False)
        )
        raise ConfigurationError(f"Invalid django-generic-tasks settings: {problems}") from exc
    _settings = current
    return current


def get_backend() -> Backend:
    """Return the backend ``start()`` uses: an active test override, else ``TASKS_BACKEND``."""
    global _backend
    if _backend_overrides:
        return _backend_overrides[-1]
    current = _backend
    if current is not None:
        return current
    with _lock:
        if _backend is None:
            configured = get_settings()
            _backend = load_backend(configured.backend, configured.backend_options)
        return _backend


def load_backend(spec: Any, options: dict[str, Any] | None = None) -> Backend:
    """Build a backend from a dotted path, a class or an instance, with constructor options."""
    from .backends.base import BaseBackend

    options = dict(options or {})
    target = spec
    if isinstance(spec, str):
        try:
            target = import_string(spec)
        except MissingDependencyError:
            raise
        except ImportError as exc:
            raise ConfigurationError(
                f"TASKS_BACKEND {spec!r} cannot be imported: {exc}. Use a dotted path such as "
                f"{DEFAULT_BACKEND!r}."
            ) from exc
    if isinstance(target, type):
        _reject_unknown_options(target, options)
        try:
            instance = target(**options)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"TASKS_BACKEND_OPTIONS are not valid for {target.__name__}: {exc}"
            ) from exc
    else:
        if options:
            raise ConfigurationError(
                "TASKS_BACKEND_OPTIONS is only used when TASKS_BACKEND is a dotted path or a "
                "class; "
                "TASKS_BACKEND is already an instance."
            )
        instance = target
    if isinstance(instance, BaseBackend):
        return instance
    raise ConfigurationError(
        f"TASKS_BACKEND {spec!r} is not a backend: backends subclass "
        "django_generic_tasks.backends.BaseBackend, which declares what a backend can do "
        "(a backend of older releases with only run(task): see 'Migrate from older releases')."
    )


def _reject_unknown_options(backend_class: type, options: dict[str, Any]) -> None:
    signature = inspect.signature(backend_class)
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigurationError(
            f"TASKS_BACKEND_OPTIONS has unknown option(s) {', '.join(map(repr, unknown))} for "
            f"{backend_class.__name__}; accepted: {', '.join(accepted) or 'none'}."
        )


@contextmanager
def override_backend(backend: Backend) -> Iterator[Backend]:
    """Make ``start()`` use ``backend`` inside the ``with`` block (all threads)."""
    with _lock:
        _backend_overrides.append(backend)
    try:
        yield backend
    finally:
        with _lock:
            _backend_overrides.remove(backend)


def reset() -> None:
    """Forget cached settings and backend so the next use re-reads them."""
    global _settings, _backend
    with _lock:
        old = _backend
        _settings = None
        _backend = None
    if old is not None:
        old.close()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTING_NAMES:
        reset()
