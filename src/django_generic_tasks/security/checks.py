"""System checks of the API auth settings (E301-E305); W301 (open endpoints) is the router's."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from ..check_ids import CheckId
from ..conf import get_settings
from ..exceptions import ConfigurationError, MissingDependencyError
from .auth import INHERIT, OIDC, clear_resolved, resolve_auth
from .certs import check_certs_url
from .oidc import google_jwt


@register(Tags.security, Tags.compatibility)
def check_api_authentication(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Errors for unusable API auth settings (the open-endpoints warning is ``check_open_api``)."""
    from ..registry import registry

    try:
        conf = get_settings()
    except ConfigurationError:
        return []  # reported by check_backend
    clear_resolved()
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
            messages.append(Error(f"{where}: {exc}", id=CheckId.API_AUTH_INVALID))
    if any(spec == OIDC for spec in specs.values()):
        messages.extend(_oidc_checks(conf.oidc_audience, conf.oidc_service_accounts))
        try:
            check_certs_url(conf.oidc_certs_url)
        except ConfigurationError as exc:
            messages.append(Error(str(exc), id=CheckId.OIDC_CERTS_URL_INSECURE))
    return messages


def _oidc_checks(audience: str | None, accounts: list[str]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not audience:
        messages.append(
            Error(
                "OIDC authentication needs TASKS_OIDC_AUDIENCE: without it any Google-signed "
                "token for any audience would be accepted.",
                hint="Set it to the audience your push queue uses, usually the endpoint's URL.",
                id=CheckId.OIDC_AUDIENCE_MISSING,
            )
        )
    if not accounts:
        messages.append(
            Error(
                "OIDC authentication needs a non-empty TASKS_OIDC_SERVICE_ACCOUNTS: any Google "
                "account can mint a Google-signed token.",
                hint="List the service account emails your push queue signs tokens with.",
                id=CheckId.OIDC_SERVICE_ACCOUNTS_MISSING,
            )
        )
    try:
        google_jwt()
    except MissingDependencyError as exc:
        messages.append(Error(str(exc), id=CheckId.OIDC_DEPENDENCY_MISSING))
    return messages
