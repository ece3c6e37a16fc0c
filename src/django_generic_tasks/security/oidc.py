"""Google-signed OIDC ID tokens (as Cloud Tasks sends them): the verifier and its ninja auth."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security import HttpBearer

from ..conf import get_settings
from ..exceptions import ConfigurationError, MissingDependencyError
from .certs import CertsCache, certs_cache

logger = logging.getLogger("django_generic_tasks")

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})


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
        jwt = google_jwt()
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


def google_jwt() -> Any:
    """``google.auth.jwt`` (``MissingDependencyError`` without the ``oidc`` extra)."""
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

    authenticates_push_queue: ClassVar[bool] = True
    """Requests it accepts come from the push queue: their Cloud Tasks and run id headers are
    trusted (set it on your own auth class to give it the same trust)."""

    def authenticate(self, request: HttpRequest, token: str) -> dict[str, Any]:
        """Verify ``token``; return its claims (raises 401/403/503 errors otherwise)."""
        return OIDCVerifier.from_settings().verify(token)
