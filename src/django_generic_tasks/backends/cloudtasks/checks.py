"""``manage.py check`` for CloudTasksBackend: what would make its tasks fail to start or run."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error, Warning

from ...check_ids import CheckId
from ...core.wire import RUN_URL_NAME_PREFIX
from ...exceptions import MissingDependencyError
from .client import EMULATOR_HOST_ENV, INSTALL_HINT, import_tasks_v2

if TYPE_CHECKING:
    from . import CloudTasksBackend

HINTS = {
    "project": "Set TASKS_BACKEND_OPTIONS['project'] to your Google Cloud project id.",
    "location": "Set TASKS_BACKEND_OPTIONS['location'] to the queues' region, e.g. 'europe-west1'.",
    "base_url": (
        "Set TASKS_BACKEND_OPTIONS['base_url'] to the absolute URL where "
        "django_generic_tasks.api.router is mounted, e.g. 'https://app.example.com/api/tasks/'."
    ),
    "service_account_email": (
        "Set TASKS_BACKEND_OPTIONS['service_account_email'] to the invoker service account whose "
        "OIDC token Cloud Tasks sends; list it in TASKS_OIDC_SERVICE_ACCOUNTS."
    ),
}


def check_cloudtasks_backend(backend: CloudTasksBackend) -> list[CheckMessage]:
    """Errors: google-cloud-tasks missing, required options missing, an emulator outside
    ``DEBUG`` that was not explicitly allowed. Warnings: an audience,
    account or ``base_url`` that this project's own endpoint would reject."""
    messages: list[CheckMessage] = []
    try:
        import_tasks_v2()
    except MissingDependencyError as exc:
        messages.append(
            Error(str(exc), hint=INSTALL_HINT, id=CheckId.CLOUDTASKS_DEPENDENCY_MISSING)
        )
    for option in backend.missing_options():
        messages.append(
            Error(
                f"CloudTasksBackend option {option!r} is not set.",
                hint=HINTS[option],
                id=CheckId.CLOUDTASKS_OPTION_MISSING,
            )
        )
    refused = backend.emulator_refused()
    if refused:
        messages.append(
            Error(
                refused,
                hint=(
                    f"Unset {EMULATOR_HOST_ENV} (and the emulator_host option) in production; "
                    "in test settings with DEBUG off, set "
                    "TASKS_BACKEND_OPTIONS['allow_emulator'] = True."
                ),
                id=CheckId.CLOUDTASKS_EMULATOR_WITHOUT_DEBUG,
            )
        )
    messages.extend(_check_oidc_pairing(backend))
    messages.extend(_check_base_url_path(backend))
    return messages


def _check_oidc_pairing(backend: CloudTasksBackend) -> list[CheckMessage]:
    from ...conf import get_settings

    configured = get_settings()
    if configured.api_authentication != "oidc" or backend.emulator_host:
        return []
    messages: list[CheckMessage] = []
    audience = backend.audience
    if configured.oidc_audience and audience and configured.oidc_audience != audience:
        messages.append(
            Warning(
                f"CloudTasksBackend signs tokens for audience {audience!r}, but "
                f"TASKS_OIDC_AUDIENCE is {configured.oidc_audience!r}: the endpoint would "
                "reject every task this backend starts.",
                hint="Make the backend's 'audience' option and TASKS_OIDC_AUDIENCE equal.",
                id=CheckId.CLOUDTASKS_AUDIENCE_REJECTED,
            )
        )
    accounts = configured.oidc_service_accounts
    email = backend.service_account_email
    if accounts and email and email not in accounts:
        messages.append(
            Warning(
                f"CloudTasksBackend's service_account_email {email!r} is not in "
                "TASKS_OIDC_SERVICE_ACCOUNTS: the endpoint would answer 403.",
                hint="Add it to TASKS_OIDC_SERVICE_ACCOUNTS.",
                id=CheckId.CLOUDTASKS_ACCOUNT_REJECTED,
            )
        )
    return messages


def _check_base_url_path(backend: CloudTasksBackend) -> list[CheckMessage]:
    """Warn when ``base_url``'s path does not reach the tasks router in this project's URLs.

    Older releases took the site root as ``base_url`` and added the route themselves; now it
    is the router's mount, so a bare origin would post every task to a 404.
    """
    from django.urls import Resolver404, resolve

    from ...core.registry import registry

    names = sorted(task_class.name for task_class in registry)
    if not backend.base_url or not names:
        return []

    def reaches_endpoint(name: str) -> bool:
        try:
            match = resolve(urlsplit(backend.url_for(name)).path)
        except Resolver404:
            return False
        return (match.url_name or "").startswith(RUN_URL_NAME_PREFIX)

    # Any task will do: one registered too late for the router has no endpoint anyway.
    if any(reaches_endpoint(name) for name in names):
        return []
    path = urlsplit(backend.url_for(names[0])).path
    return [
        Warning(
            f"CloudTasksBackend posts task {names[0]!r} to {path!r}, which is not a task "
            "endpoint in this project's URLconf.",
            hint=(
                "Set base_url to the absolute URL where django_generic_tasks.api.router is "
                "mounted, e.g. 'https://app.example.com/api/tasks/' (older releases took the "
                "site root). Ignore this if another project serves the tasks."
            ),
            id=CheckId.CLOUDTASKS_BASE_URL_UNROUTED,
        )
    ]
