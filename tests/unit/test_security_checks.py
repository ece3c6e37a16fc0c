"""System checks for the tasks API's authentication settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client

import tests.unit.test_api_exposure
import tests.unit.test_security_objects  # noqa: F401  (their tasks are the checks' subjects)
from django_generic_tasks.api.checks import (
    check_model_refs_authorized,
    check_open_api,
    check_open_api_deploy,
)
from django_generic_tasks.security import check_api_authentication

# Requests go through Django's request signals, which touch the database connection.
pytestmark = pytest.mark.django_db


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


@pytest.fixture(autouse=True)
def _mounted() -> None:
    Client().get("/api/openapi.json")  # builds the URLconf, which mounts the router


def test_oidc_without_audience_is_an_error(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "oidc"
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = ["sa@p.iam.gserviceaccount.com"]
    assert "django_generic_tasks.E302" in ids(check_api_authentication())


def test_oidc_without_service_accounts_is_an_error(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "oidc"
    settings.TASKS_OIDC_AUDIENCE = "https://x.test/api/tasks/"
    assert "django_generic_tasks.E303" in ids(check_api_authentication())


def test_complete_oidc_settings_pass(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "oidc"
    settings.TASKS_OIDC_AUDIENCE = "https://x.test/api/tasks/"
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = ["sa@p.iam.gserviceaccount.com"]
    messages = check_api_authentication()
    assert not [m for m in messages if m.is_serious()]
    assert not any("tests.add" in m.msg for m in messages)


def test_unimportable_auth_path_is_an_error(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.nowhere.Auth"
    (error,) = [m for m in check_api_authentication() if m.id == "django_generic_tasks.E301"]
    assert "tests.nowhere.Auth" in error.msg


def test_open_api_without_debug_warns(settings: Any) -> None:
    settings.DEBUG = False
    (warning,) = [m for m in check_open_api() if m.id == "django_generic_tasks.W301"]
    assert "tests.add" in warning.msg
    assert "runs/<run_id>" in warning.msg


def test_open_api_warns_with_debug_too(settings: Any) -> None:
    # A newcomer's project runs with DEBUG on: that is when it must hear of open endpoints.
    settings.DEBUG = True
    (warning,) = [m for m in check_open_api() if m.id == "django_generic_tasks.W301"]
    assert "tests.add" in warning.msg
    assert "django_generic_tasks.W301" in ids(run_checks(tags=["security"]))


def test_w301_leaves_out_tasks_that_are_not_exposed() -> None:
    (warning,) = [m for m in check_open_api() if m.id == "django_generic_tasks.W301"]
    assert "tests.exposure.send_mail" not in warning.msg  # api_exposed = False


def test_deploy_check_errs_when_authentication_was_never_chosen(settings: Any) -> None:
    if hasattr(settings, "TASKS_API_AUTHENTICATION"):
        del settings.TASKS_API_AUTHENTICATION
    deploy = run_checks(tags=["security"], include_deployment_checks=True)
    (error,) = [m for m in deploy if m.id == "django_generic_tasks.E306"]
    assert error.is_serious()
    assert "tests.add" in error.msg
    assert "E306" not in str(ids(run_checks(tags=["security"])))  # only under --deploy


def test_deploy_check_accepts_openness_written_in_settings(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = None
    assert "django_generic_tasks.E306" not in ids(check_open_api_deploy())
    assert "django_generic_tasks.W301" in ids(check_open_api())  # still said, as a warning


def test_a_model_ref_task_served_without_api_authorize_warns() -> None:
    flagged = {m.obj.name for m in check_model_refs_authorized()}
    assert "tests.objects.read_any_doc" in flagged
    assert "tests.objects.read_doc" not in flagged  # it defines api_authorize
    assert "tests.add" not in flagged  # no model refs


def test_w301_leaves_out_the_run_status_endpoint_once_global_auth_is_set(settings: Any) -> None:
    settings.DEBUG = False
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.allow_header_key"
    messages = [m for m in check_open_api() if m.id == "django_generic_tasks.W301"]
    # Only tasks that opt out with api_auth = None stay open; runs of other tasks are guarded.
    assert all("runs/<run_id>" not in m.msg for m in messages)
    assert all("tests.add" not in m.msg for m in messages)


def test_plain_http_certs_url_is_an_error(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "oidc"
    settings.TASKS_OIDC_AUDIENCE = "https://x.test/api/tasks/"
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = ["sa@p.iam.gserviceaccount.com"]
    settings.TASKS_OIDC_CERTS_URL = "http://certs.example.test/oauth2/v1/certs"
    assert "django_generic_tasks.E305" in ids(check_api_authentication())
    for fine in ("https://certs.example.test/c", "http://127.0.0.1:8123/c", "http://[::1]/c"):
        settings.TASKS_OIDC_CERTS_URL = fine
        assert "django_generic_tasks.E305" not in ids(check_api_authentication())


def test_the_check_is_registered_with_django(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "oidc"
    assert "django_generic_tasks.E302" in ids(run_checks(tags=["security"]))
