"""API authentication for the tasks endpoints: none, verified Google OIDC, or your own.

- ``certs``: Google's signing certificates (cache, single-flight fetch, https only);
- ``oidc``: the OIDC token verifier and its django-ninja auth class, ``GoogleOIDCAuth``;
- ``auth``: which auth guards a task (``TASKS_API_AUTHENTICATION`` / the task's ``api_auth``);
- ``checks``: system checks of those settings.
"""

from __future__ import annotations

from ..exceptions import ConfigurationError
from .auth import (
    INHERIT,
    OIDC,
    AuthCallable,
    auth_for_task,
    auth_spec_for_task,
    auth_spec_safe,
    resolve_auth,
)
from .certs import CertificatesUnavailable, CertsCache, certs_cache, check_certs_url
from .checks import check_api_authentication
from .oidc import GOOGLE_ISSUERS, GoogleOIDCAuth, OIDCVerifier

__all__ = [
    "GOOGLE_ISSUERS",
    "INHERIT",
    "OIDC",
    "AuthCallable",
    "CertificatesUnavailable",
    "CertsCache",
    "ConfigurationError",
    "GoogleOIDCAuth",
    "OIDCVerifier",
    "auth_for_task",
    "auth_spec_for_task",
    "auth_spec_safe",
    "certs_cache",
    "check_api_authentication",
    "check_certs_url",
    "resolve_auth",
]
