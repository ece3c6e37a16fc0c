"""CloudTasksBackend configuration: options, URLs, queues, audience, checks and bad input."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from django_generic_tasks import conf
from django_generic_tasks.backends import CloudTasksBackend
from django_generic_tasks.backends.cloudtasks.request import (
    build_create_task_request,
    task_id,
)
from django_generic_tasks.checks import check_backend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.exceptions import (
    CloudTasksEnqueueError,
    ConfigurationError,
    InvalidOptionError,
    MissingDependencyError,
    UnsupportedOptionError,
)
from tests.testapp.tasks import AddTask

OPTIONS = {
    "project": "proj",
    "location": "europe-west1",
    "queue": "tasks",
    "base_url": "https://app.example.com/api/tasks/",
    "service_account_email": "invoker@proj.iam.gserviceaccount.com",
}


def backend(**overrides: object) -> CloudTasksBackend:
    return CloudTasksBackend(**{**OPTIONS, **overrides})  # type: ignore[arg-type]


def request_for(**changes: object) -> EnqueueRequest:
    return replace(EnqueueRequest.for_task(AddTask({"a": 1, "b": 2})), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "base_url",
    [
        "https://app.example.com/api/tasks",
        "https://app.example.com/api/tasks/",
        "https://app.example.com/api/tasks//",
    ],
)
def test_task_url_is_base_url_plus_task_name_whatever_the_trailing_slashes(base_url: str) -> None:
    assert backend(base_url=base_url).url_for("tests.add") == (
        "https://app.example.com/api/tasks/tests.add"
    )


def test_default_audience_is_the_origin_of_base_url() -> None:
    assert backend().audience == "https://app.example.com"
    assert backend(base_url="http://127.0.0.1:8000/x/").audience == "http://127.0.0.1:8000"


def test_explicit_audience_is_used_as_given() -> None:
    assert backend(audience="https://custom-aud").audience == "https://custom-aud"


def test_queue_names_map_to_cloud_tasks_queue_paths() -> None:
    b = backend(queues={"emails": "email-queue", "reports": "projects/other/locations/us/queues/r"})
    assert b.queue_path_for("emails") == "projects/proj/locations/europe-west1/queues/email-queue"
    assert b.queue_path_for("reports") == "projects/other/locations/us/queues/r"
    assert b.queue_path_for("default") == "projects/proj/locations/europe-west1/queues/tasks"


def test_without_queue_option_the_task_queue_name_is_the_cloud_tasks_queue() -> None:
    assert backend(queue=None).queue_path_for("emails").endswith("/queues/emails")


def test_key_names_depend_only_on_task_name_and_key() -> None:
    first, second = request_for(key="order-1"), request_for(key="order-1")
    assert first.run_id != second.run_id
    assert task_id(first) == task_id(second)
    assert task_id(request_for(key="order-2")) != task_id(first)
    assert task_id(replace(first, task_name="tests.other")) != task_id(first)
    assert task_id(request_for()) != task_id(request_for())


def test_attack_same_key_on_two_tasks_never_collides_in_cloud_tasks() -> None:
    ours = request_for(key="export-user-7")
    theirs = replace(ours, task_name="tests.export", run_id="other")
    assert task_id(ours) != task_id(theirs)


@pytest.mark.parametrize(
    "queue",
    [
        "projects/otherproj/locations/us-central1/queues/prod-billing",
        "../queues/prod-billing",
        "a" * 150,
        "with space",
    ],
)
def test_attack_caller_chosen_queue_never_becomes_another_queue_path(queue: str) -> None:
    unmapped = backend(queue=None)
    with pytest.raises(InvalidOptionError, match="cannot be a Cloud Tasks queue id"):
        AddTask({"a": 1}).start(backend=unmapped, queue=queue)
    assert unmapped._clients._client is None  # refused before any create


def test_configured_queue_paths_are_still_accepted() -> None:
    mapped = backend(queue=None, queues={"billing": "projects/p2/locations/l2/queues/b"})
    assert mapped.queue_path_for("billing") == "projects/p2/locations/l2/queues/b"
    assert mapped.queue_path_for("emails-2").endswith("/europe-west1/queues/emails-2")


def test_create_request_without_service_account_has_no_oidc_token() -> None:
    create = build_create_task_request(
        request_for(), parent="p", url="http://x/t", service_account_email=None, audience="a"
    )
    assert "oidc_token" not in create["task"]["http_request"]


@pytest.mark.parametrize("timeout", [1, 14.9, 1800.5, 7200])
def test_timeout_outside_cloud_tasks_dispatch_deadline_range_is_refused(timeout: float) -> None:
    with pytest.raises(UnsupportedOptionError, match="between 15s and 1800s"):
        backend().create_task_request(request_for(timeout=timeout))


@pytest.mark.parametrize("timeout", [15, 60.5, 1800])
def test_timeout_inside_the_range_becomes_the_dispatch_deadline(timeout: float) -> None:
    create = backend().create_task_request(request_for(timeout=timeout))
    assert create["task"]["dispatch_deadline"] == timedelta(seconds=timeout)


def test_run_after_becomes_schedule_time() -> None:
    eta = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert backend().create_task_request(request_for(run_after=eta))["task"]["schedule_time"] == eta


def test_loads_from_dotted_path_and_options(settings: object) -> None:
    loaded = conf.load_backend("django_generic_tasks.backends.CloudTasksBackend", OPTIONS)
    assert isinstance(loaded, CloudTasksBackend)
    assert loaded.queue_path_for("default") == "projects/proj/locations/europe-west1/queues/tasks"


def test_loads_from_an_instance_in_settings(settings: object) -> None:
    instance = backend()
    settings.TASKS_BACKEND = instance  # type: ignore[attr-defined]
    assert conf.get_backend() is instance


def test_older_releases_positional_form_still_works() -> None:
    old = CloudTasksBackend(
        "proj", "us-central1", "q", "https://app.example.com/api/tasks/", "sa@proj.iam"
    )
    assert old.service_account_email == "sa@proj.iam"
    assert CloudTasksBackend(service_account="sa@x").service_account_email == "sa@x"


def test_unknown_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown option"):
        conf.load_backend(CloudTasksBackend, {**OPTIONS, "regoin": "x"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_url": "/api/tasks/"}, "absolute http"),
        ({"base_url": "ftp://x/y"}, "absolute http"),
        ({"project": ""}, "non-empty string"),
        ({"queues": {"emails": "projects/p/queues/q"}}, "not a queue id"),
        ({"queues": {"emails": ""}}, "queue id"),
        ({"bulk_concurrency": 0}, "bulk_concurrency"),
        ({"retry_deadline": -1}, "retry_deadline"),
        ({"emulator_oidc_token": "token"}, "only accepted together with 'emulator_host'"),
        ({"api_endpoint": "https://cloudtasks.googleapis.com/"}, "no scheme, no path"),
        ({"api_endpoint": ""}, "'host' or 'host:port'"),
        ({"api_endpoint": 443}, "'host' or 'host:port'"),
        ({"api_endpoint": "x:443", "emulator_host": "127.0.0.1:1"}, "exclude each other"),
    ],
)
def test_invalid_options_are_refused_clearly(
    overrides: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    with pytest.raises(ConfigurationError, match=message):
        backend(**overrides)


def test_emulator_host_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "127.0.0.1:8123")
    assert backend().emulator_host == "127.0.0.1:8123"
    assert backend(emulator_host="127.0.0.1:9").emulator_host == "127.0.0.1:9"


def test_complete_configuration_passes_the_checks() -> None:
    assert backend().check() == []


def test_each_missing_option_is_a_check_error_with_a_hint() -> None:
    messages = CloudTasksBackend().check()
    assert [m.id for m in messages] == ["django_generic_tasks.E202"] * 4
    text = " ".join(m.msg for m in messages)
    for option in ("project", "location", "base_url", "service_account_email"):
        assert repr(option) in text
    assert all(m.hint for m in messages)


def test_manage_py_check_reports_missing_options(settings: object) -> None:
    settings.TASKS_BACKEND = "django_generic_tasks.backends.CloudTasksBackend"  # type: ignore[attr-defined]
    settings.TASKS_BACKEND_OPTIONS = {"project": "proj"}  # type: ignore[attr-defined]
    ids = [m.id for m in check_backend()]
    assert ids == ["django_generic_tasks.E202"] * 3


def test_start_with_missing_options_raises_before_sending(settings: object) -> None:
    with pytest.raises(ConfigurationError, match="missing option"):
        AddTask({"a": 1}).start(backend=CloudTasksBackend(project="p"))


def test_emulator_does_not_need_a_service_account() -> None:
    emulated = backend(service_account_email=None, emulator_host="127.0.0.1:1", allow_emulator=True)
    assert emulated.check() == []


def test_attack_emulator_host_from_the_environment_with_debug_off_is_a_check_error(
    monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    settings.DEBUG = False  # type: ignore[attr-defined]
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "10.0.0.99:8123")
    messages = backend().check()
    assert [m.id for m in messages] == ["django_generic_tasks.E203"]
    assert "10.0.0.99:8123" in messages[0].msg
    assert "CLOUD_TASKS_EMULATOR_HOST" in messages[0].msg


def test_attack_emulator_with_debug_off_sends_nothing_and_raises_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    settings.DEBUG = False  # type: ignore[attr-defined]
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "10.0.0.99:8123")
    emulated = backend(emulator_oidc_token="secret-token")
    with pytest.raises(ConfigurationError, match="DEBUG is off"):
        AddTask({"a": 1}).start(backend=emulated)
    assert emulated._clients._client is None  # no channel was ever opened


def test_emulator_is_accepted_with_debug_on_or_when_explicitly_allowed(
    monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "127.0.0.1:1")
    assert backend(allow_emulator=True).check() == []
    settings.DEBUG = True  # type: ignore[attr-defined]
    assert backend().check() == []


def test_allow_emulator_must_be_a_boolean() -> None:
    with pytest.raises(ConfigurationError, match="allow_emulator"):
        backend(allow_emulator="yes")


def test_audience_that_the_endpoint_would_reject_is_a_warning(settings: object) -> None:
    settings.TASKS_API_AUTHENTICATION = "oidc"  # type: ignore[attr-defined]
    settings.TASKS_OIDC_AUDIENCE = "https://other.example.com"  # type: ignore[attr-defined]
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = ["someone-else@proj.iam.gserviceaccount.com"]  # type: ignore[attr-defined]
    ids = [m.id for m in backend().check()]
    assert ids == ["django_generic_tasks.W201", "django_generic_tasks.W202"]
    settings.TASKS_OIDC_AUDIENCE = "https://app.example.com"  # type: ignore[attr-defined]
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = [OPTIONS["service_account_email"]]  # type: ignore[attr-defined]
    assert backend().check() == []


def test_missing_google_cloud_tasks_is_reported_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.tasks_v2", None)
    b = backend()
    [message] = b.check()
    assert message.id == "django_generic_tasks.E201"
    assert "django-generic-tasks[cloudtasks]" in message.hint
    with pytest.raises(MissingDependencyError, match=r"\[cloudtasks\]"):
        b.enqueue(request_for())


def test_capabilities() -> None:
    b = backend()
    assert (b.supports_defer, b.supports_key, b.supports_retries) == (True, True, True)
    assert (b.supports_priority, b.supports_results) == (False, False)
    with pytest.raises(UnsupportedOptionError, match="priority"):
        AddTask({"a": 1}).start(priority=5, backend=b)


def test_run_id_header_is_the_one_the_endpoint_reads() -> None:
    from django_generic_tasks import api

    headers = backend().create_task_request(request_for())["task"]["http_request"]["headers"]
    assert headers[api.RUN_ID_HEADER] == headers["X-Task-Run-Id"]


@pytest.mark.parametrize(
    "base_url", ["https://app.example.com", "https://app.example.com/", "https://x/api/wrong/"]
)
def test_base_url_that_does_not_reach_the_router_is_a_warning(base_url: str) -> None:
    [message] = backend(base_url=base_url).check()
    assert message.id == "django_generic_tasks.W203"
    assert "older releases took the site root" in (message.hint or "")


def test_base_url_at_the_routers_mount_passes() -> None:
    assert backend(base_url="http://127.0.0.1:8000/api/tasks").check() == []


def test_params_too_large_for_a_cloud_tasks_task_are_refused_clearly() -> None:
    big = request_for(params_json='{"a": 1, "b": 2, "pad": "' + "x" * 100_000 + '"}')
    with pytest.raises(InvalidOptionError, match="at most 100 KB"):
        backend().create_task_request(big)


def test_missing_application_default_credentials_is_one_clear_enqueue_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    b = backend()
    with pytest.raises(CloudTasksEnqueueError, match="Application Default Credentials") as caught:
        b.enqueue(request_for())
    assert "projects/proj/locations/europe-west1/queues/tasks" in str(caught.value)
    with pytest.raises(CloudTasksEnqueueError, match="Application Default Credentials"):
        b.enqueue_many([request_for()])


def test_api_endpoint_with_an_emulator_host_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "127.0.0.1:8123")
    with pytest.raises(ConfigurationError, match="CLOUD_TASKS_EMULATOR_HOST"):
        backend(api_endpoint="cloudtasks.googleapis.com:443")


def test_api_endpoint_client_uses_application_default_credentials_from_a_key_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_file = tmp_path / "key.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "proj",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "enqueuer@proj.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "http://127.0.0.1:9/token",
            }
        )
    )
    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    b = backend(api_endpoint="europe-west1-cloudtasks.example.test:8443")
    assert "endpoint=europe-west1-cloudtasks.example.test:8443" in repr(b)
    try:
        transport = b._client("parent").transport  # no connection is made until a call
        assert transport._host == "europe-west1-cloudtasks.example.test:8443"
        assert isinstance(transport._credentials, service_account.Credentials)
        assert transport._credentials.service_account_email == (
            "enqueuer@proj.iam.gserviceaccount.com"
        )
    finally:
        b.close()
