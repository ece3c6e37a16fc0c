"""API authentication for the tasks endpoints: none, verified Google OIDC, or your own.

``TASKS_API_AUTHENTICATION`` (and a task class's ``api_auth`` attribute, which overrides it
for that task) is one of:

- ``None``: open endpoints (a system check warns when ``DEBUG`` is off);
- ``"oidc"``: a Google-signed OIDC ID token in ``Authorization: Bearer ...``, as Cloud Tasks
  sends it, verified by ``GoogleOIDCAuth``;
- a django-ninja auth class or instance, a callable ``(request) -> truthy``, or a dotted path
  to any of them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.module_loading import import_string
from ninja.errors import AuthenticationError, AuthorizationError, HttpError
from ninja.security import HttpBearer

from .conf import get_settings
from .exceptions import ConfigurationError, MissingDependencyError

logger = logging.getLogger("django_generic_tasks")

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
OIDC = "oidc"
INHERIT: Any = object()
"""Marker: a task without its own ``api_auth`` uses ``TASKS_API_AUTHENTICATION``."""

AuthCallable = Callable[[HttpRequest], Any]

__all__ = [
    "GOOGLE_ISSUERS",
    "CertificatesUnavailable",
    "CertsCache",
    "GoogleOIDCAuth",
    "OIDCVerifier",
    "auth_for_task",
    "resolve_auth",
]


class CertificatesUnavailable(HttpError):
    """Google's signing certificates could not be fetched: answer 503 so the caller retries."""

    def __init__(self, message: str = "Token signing certificates are unavailable.") -> None:
        super().__init__(503, message)


@dataclass
class _CachedCerts:
    certs: dict[str, str]
    expires_at: float


@dataclass
class CertsCache:
    """``{kid: PEM certificate}`` from ``url``, kept for the response's ``Cache-Control: max-age``.

    Certificates are never fetched per request: a fetch happens when the cache has expired, or
    when a token names an unknown ``kid`` (key rotation), and never more often than once per
    ``min_interval`` seconds. When a refresh fails, cached certificates keep being used for
    at most ``max_stale`` seconds past their expiry; after that, and with none cached, requests
    get ``CertificatesUnavailable`` (503).
    """

    url: str
    timeout: float = 5.0
    min_interval: float = 5.0
    default_max_age: float = 300.0
    max_stale: float = 86400.0
    fetches: int = 0
    _cached: _CachedCerts | None = None
    _last_attempt: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, kid: str | None = None) -> dict[str, str]:
        """The current certificates; refreshed first if expired or ``kid`` is unknown."""
        cached = self._cached
        now = time.monotonic()
        if cached is not None and now < cached.expires_at and (kid is None or kid in cached.certs):
            return cached.certs
        with self._lock:
            cached = self._cached
            now = time.monotonic()
            fresh = cached is not None and now < cached.expires_at
            if fresh and (kid is None or kid in cached.certs):  # type: ignore[union-attr]
                return cached.certs  # type: ignore[union-attr]
            if now - self._last_attempt >= self.min_interval:
                self._last_attempt = now
                try:
                    cached = self._fetch()
                except Exception as exc:
                    logger.warning("Could not fetch OIDC certificates from %s: %s", self.url, exc)
                else:
                    self._cached = cached
            if cached is None or now > cached.expires_at + self.max_stale:
                raise CertificatesUnavailable()
            return cached.certs

    def clear(self) -> None:
        """Forget the cached certificates (tests)."""
        with self._lock:
            self._cached = None
            self._last_attempt = float("-inf")

    def _fetch(self) -> _CachedCerts:
        self.fetches += 1
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body = response.read(1_000_000)
            cache_control = response.headers.get("Cache-Control", "")
            age = response.headers.get("Age", "0")
        certs = json.loads(body)
        if not isinstance(certs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in certs.items()
        ):
            raise ValueError("the certificates document is not a JSON object of PEM strings")
        max_age = self.default_max_age
        match = re.search(r"max-age=(\d+)", cache_control)
        if match:
            max_age = float(match.group(1))
        if age.isdigit():
            max_age -= float(age)
        now = time.monotonic()
        return _CachedCerts(certs=certs, expires_at=now + max(max_age, 0.0))


_certs_caches: dict[str, CertsCache] = {}
_certs_lock = threading.Lock()


def certs_cache(url: str) -> CertsCache:
    """The process-wide ``CertsCache`` of ``url``."""
    cache = _certs_caches.get(url)
    if cache is None:
        with _certs_lock:
            cache = _certs_caches.setdefault(url, CertsCache(url))
    return cache


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


@dataclass(frozen=True)
class OIDCVerifier:
    """Verifies a Google-signed OIDC ID token against the ``TASKS_OIDC_*`` settings.

    RS256 only; ``iss`` is Google's; ``aud`` equals ``audience``; ``exp`` and ``iat`` hold within
    ``clock_skew`` seconds; ``email_verified`` is true and ``email`` is an allowed account.
    Raises ``AuthenticationError`` (401) for an invalid token, ``AuthorizationError`` (403)
    for a valid token of an account that is not allowed, ``CertificatesUnavailable`` (503).
    """

    audience: str
    service_accounts: frozenset[str]
    certs: CertsCache
    clock_skew: int = 10

    @classmethod
    def from_settings(cls) -> OIDCVerifier:
        """A verifier configured by ``TASKS_OIDC_*`` (``ConfigurationError`` if incomplete)."""
        conf = get_settings()
        if not conf.oidc_audience or not conf.oidc_service_accounts:
            raise ConfigurationError(
                "TASKS_API_AUTHENTICATION='oidc' needs TASKS_OIDC_AUDIENCE and a non-empty "
                "TASKS_OIDC_SERVICE_ACCOUNTS."
            )
        return cls(
            audience=conf.oidc_audience,
            service_accounts=frozenset(conf.oidc_service_accounts),
            certs=certs_cache(conf.oidc_certs_url),
            clock_skew=conf.oidc_clock_skew,
        )

    def verify(self, token: str) -> dict[str, Any]:
        """Return the token's claims if it is valid and allowed; raise otherwise."""
        jwt = _google_jwt()
        try:
            header = _b64_json(token.split(".", 1)[0])
        except Exception:
            raise self._reject("the token is not a JWT") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise self._reject("the token is not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise self._reject("the token has no key id")
        certs = self.certs.get(kid)
        if kid not in certs:
            raise self._reject(f"unknown key id {kid!r}")
        try:
            claims = jwt.decode(
                token,
                certs={kid: certs[kid]},
                audience=self.audience,
                clock_skew_in_seconds=self.clock_skew,
            )
        except Exception as exc:
            raise self._reject(str(exc)) from None
        if not isinstance(claims, dict) or _text(claims.get("iss")) not in GOOGLE_ISSUERS:
            raise self._reject("the issuer is not Google")
        if claims.get("email_verified") is not True:
            raise self._forbid("the token's email is not verified")
        if _text(claims.get("email")) not in self.service_accounts:
            raise self._forbid(f"{claims.get('email')!r} is not in TASKS_OIDC_SERVICE_ACCOUNTS")
        return claims

    @staticmethod
    def _reject(reason: str) -> AuthenticationError:
        logger.warning("Rejected an OIDC token: %s", reason)
        message = f"Invalid OIDC token: {reason}." if settings.DEBUG else "Invalid OIDC token."
        return AuthenticationError(message=message)

    @staticmethod
    def _forbid(reason: str) -> AuthorizationError:
        logger.warning("Refused an OIDC token: %s", reason)
        message = f"Forbidden: {reason}." if settings.DEBUG else "This caller is not allowed."
        return AuthorizationError(message=message)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _google_jwt() -> Any:
    try:
        from google.auth import jwt
    except ImportError as exc:
        raise MissingDependencyError(
            "TASKS_API_AUTHENTICATION='oidc' needs google-auth: "
            "pip install 'django-generic-tasks[oidc]'"
        ) from exc
    return jwt


class GoogleOIDCAuth(HttpBearer):
    """django-ninja auth for ``"oidc"``: a verified Google OIDC token in the Bearer header.

    ``request.auth`` becomes the token's claims. Settings are read per request, so
    ``override_settings`` works; certificates are cached per their ``max-age``.
    """

    def authenticate(self, request: HttpRequest, token: str) -> dict[str, Any]:
        """Verify ``token``; return its claims (raises 401/403/503 errors otherwise)."""
        return OIDCVerifier.from_settings().verify(token)


_resolved: dict[Any, AuthCallable | None] = {}


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


def auth_for_task(task_class: type[Any] | None) -> AuthCallable | None:
    """The auth callable that guards ``task_class``'s endpoints (``None``: open)."""
    return resolve_auth(auth_spec_for_task(task_class))


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("TASKS_"):
        _resolved.clear()


def _uses_oidc(specs: list[Any]) -> bool:
    return any(spec == OIDC for spec in specs)


@register(Tags.security, Tags.compatibility)
def check_api_authentication(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Errors for unusable API auth settings; a warning for open endpoints in production."""
    from .registry import registry

    try:
        conf = get_settings()
    except ConfigurationError:
        return []  # reported by check_backend
    _resolved.clear()
    specs = {"TASKS_API_AUTHENTICATION": conf.api_authentication}
    for task_class in registry:
        own = getattr(task_class, "api_auth", INHERIT)
        if own is not INHERIT:
            specs[f"{task_class.name}.api_auth"] = own
    messages: list[CheckMessage] = []
    for where, spec in specs.items():
        try:
            resolve_auth(spec)
        except ConfigurationError as exc:
            messages.append(Error(f"{where}: {exc}", id="django_generic_tasks.E301"))
    if _uses_oidc(list(specs.values())):
        messages.extend(_oidc_checks(conf.oidc_audience, conf.oidc_service_accounts))
    if not settings.DEBUG and _router_mounted():
        open_tasks = [t.name for t in registry if auth_spec_safe(t) is None]
        if open_tasks:
            messages.append(
                Warning(
                    "The tasks API is mounted without authentication, so anyone who can reach "
                    f"it can run these tasks: {', '.join(sorted(open_tasks))}.",
                    hint="Set TASKS_API_AUTHENTICATION = 'oidc' (Cloud Tasks) or a dotted path "
                    "to a django-ninja auth class, or set api_auth on each task.",
                    id="django_generic_tasks.W301",
                )
            )
    return messages


def auth_spec_safe(task_class: type[Any]) -> Any:
    """``auth_spec_for_task`` for checks: never raises."""
    try:
        return auth_spec_for_task(task_class)
    except ConfigurationError:
        return "invalid"


def _oidc_checks(audience: str | None, accounts: list[str]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not audience:
        messages.append(
            Error(
                "OIDC authentication needs TASKS_OIDC_AUDIENCE: without it any Google-signed "
                "token for any audience would be accepted.",
                hint="Set it to the audience your push queue uses, usually the endpoint's URL.",
                id="django_generic_tasks.E302",
            )
        )
    if not accounts:
        messages.append(
            Error(
                "OIDC authentication needs a non-empty TASKS_OIDC_SERVICE_ACCOUNTS: any Google "
                "account can mint a Google-signed token.",
                hint="List the service account emails your push queue signs tokens with.",
                id="django_generic_tasks.E303",
            )
        )
    try:
        _google_jwt()
    except MissingDependencyError as exc:
        messages.append(Error(str(exc), id="django_generic_tasks.E304"))
    return messages


def _router_mounted() -> bool:
    from django.urls import get_resolver

    try:
        get_resolver().url_patterns  # noqa: B018  (imports the URLconf, which mounts the router)
    except Exception:
        return False  # Django's own URL checks report a broken URLconf
    from .api import router

    return router.mounted
