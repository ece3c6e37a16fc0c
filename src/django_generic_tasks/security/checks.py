"""System checks of the API auth settings (E301-E305); W301 (open endpoints) is the router's."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..check_ids import CheckId
from ..conf import get_backend, get_settings
from ..exceptions import ConfigurationError, MissingDependencyError
from .auth import (
    INHERIT,
    OIDC,
    auth_spec_for_task,
    authenticates_push_queue,
    clear_resolved,
    resolve_auth,
)
from .certs import check_certs_url
from .oidc import google_jwt


@register(Tags.security, Tags.compatibility)
def check_api_authentication(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Errors for unusable API auth settings (the open-endpoints warning is ``check_open_api``)."""
    from ..core.registry import registry

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


@register(Tags.security)
def check_push_queue_trust(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W204: a push backend (Cloud Tasks) whose deliveries nothing authenticates, so their
    attempt and run id headers are not believed: retries never end, run ids change."""
    from ..core.registry import registry

    try:
        conf = get_settings()
        backend = get_backend()
    except (ConfigurationError, MissingDependencyError):
        return []  # reported by check_backend
    if not backend.pushes_to_endpoints or conf.trust_push_headers:
        return []
    if backend.emulated_push_queue:
        return []
    untrusted = []
    for task_class in registry or [None]:
        try:
            auth = resolve_auth(auth_spec_for_task(task_class))
        except ConfigurationError:
            continue  # E301
        if not authenticates_push_queue(auth):
            untrusted.append("TASKS_API_AUTHENTICATION" if task_class is None else task_class.name)
    if not untrusted:
        return []
    shown = ", ".join(untrusted[:5]) + (
        f" and {len(untrusted) - 5} more" if len(untrusted) > 5 else ""
    )
    return [
        Warning(
            f"{type(backend).__name__} pushes runs to endpoints that do not authenticate the "
            f"push queue ({shown}): their attempt and run id headers are ignored, so every "
            "delivery is attempt 1 of a new run (retries never end, run ids change).",
            hint=(
                'Set TASKS_API_AUTHENTICATION = "oidc" (with TASKS_OIDC_AUDIENCE and '
                "TASKS_OIDC_SERVICE_ACCOUNTS), or, when a proxy in front lets only the push "
                "queue through (Cloud Run IAM, IAP), TASKS_TRUST_PUSH_HEADERS = True."
            ),
            id=CheckId.CLOUDTASKS_PUSH_QUEUE_UNAUTHENTICATED,
        )
    ]
