"""The tasks router: one validated endpoint per task, status codes, envelopes, start and runs."""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from ninja import NinjaAPI, Router
from ninja.security import APIKeyHeader, HttpBearer
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import api
from django_generic_tasks.api.markdown import rst_to_markdown
from django_generic_tasks.backends import InMemoryBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.core.registry import registry
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.signals import task_finished
from tests.testapp.tasks import attempts, calls

# Requests go through Django's request signals, which touch the database connection.
pytestmark = pytest.mark.django_db

URL = "/api/tasks/"


class OpaqueParams(BaseModel):
    """Nothing to say."""

    label: str = "x"


class OpaqueResultTask(tasks.Task[OpaqueParams]):
    """Returns something JSON cannot hold."""

    name = "tests.api.opaque"

    def run(self) -> object:
        return object()


class LastTryParams(BaseModel):
    fail: bool = True


class AlwaysFailsTask(tasks.Task[LastTryParams]):
    """Fails every attempt; three attempts allowed."""

    name = "tests.api.always_fails"
    max_attempts = 3

    def run(self) -> None:
        raise RuntimeError("secret internal detail")


def allow_header_key(request: Any) -> Any:
    """A custom auth callable: the old releases' form."""
    return request.headers.get("X-Key") == "let-me-in" or None


class PrivateTask(tasks.Task[OpaqueParams]):
    """Guarded by its own auth, whatever TASKS_API_AUTHENTICATION says."""

    name = "tests.api.private"
    api_auth = "tests.unit.test_api.allow_header_key"

    def run(self) -> str:
        return "private"


class Inner(BaseModel):
    x: int


class NestedParams(BaseModel):
    inner: Inner


class NestedTask(tasks.Task[NestedParams]):
    """Records the params it was given."""

    name = "tests.api.nested"

    def run(self) -> int:
        calls.append((self.name, self.params))
        return self.params.inner.x


class PublicTask(tasks.Task[OpaqueParams]):
    """Open even when TASKS_API_AUTHENTICATION is set."""

    name = "tests.api.public"
    api_auth = None

    def run(self) -> str:
        return "public"


class KeyedTask(tasks.Task[OpaqueParams]):
    """Takes a deduplication key over HTTP."""

    name = "tests.api.keyed"
    api_accepts_key = True

    def run(self) -> str:
        return self.params.label


class PushQueueKey(APIKeyHeader):
    """Stands in for the push queue's OIDC auth: requests it accepts may set push headers."""

    param_name = "X-Push-Key"
    authenticates_push_queue = True

    def authenticate(self, request: Any, key: str | None) -> Any:
        return key == "push" or None


PUSH = {"X-Push-Key": "push"}
DELIVERY = {**PUSH, "X-CloudTasks-TaskName": "delivery-1"}
PUSH_WITH_QUEUE_NAME = {**PUSH, "X-CloudTasks-QueueName": "default"}


@pytest.fixture
def push_queue(settings: Any) -> None:
    """Endpoints guarded by an auth that authenticates the push queue (as OIDC does)."""
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.PushQueueKey"


@pytest.fixture
def client() -> Client:
    return Client()


def post(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.post(URL + path, body, content_type="application/json", headers=headers)


def test_post_runs_the_task_and_returns_the_envelope(client: Client) -> None:
    response = post(client, "tests.add", {"a": 2, "b": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["task"] == "tests.add"
    assert body["status"] == "succeeded"
    assert body["result"] == 5
    assert body["attempt"] == 1
    assert body["error"] is None
    assert body["run_id"]
    assert calls[-1] == ("tests.add", 5)


def test_async_task_runs_over_http(client: Client) -> None:
    response = post(client, "tests.async_echo", {"value": "hi"})
    assert response.status_code == 200
    assert response.json()["result"] == "hi"


def test_invalid_params_answer_422_with_field_errors_and_do_not_run(client: Client) -> None:
    response = post(client, "tests.add", {"a": "not a number"})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors[0]["loc"][-1] == "a"
    assert errors[0]["type"] == "int_parsing"
    assert calls == []


def test_unknown_fields_are_rejected_like_start_does(client: Client) -> None:
    response = post(client, "tests.add", {"a": 1, "bb": 2})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"
    assert calls == []


def test_malformed_json_answers_4xx_not_500(client: Client) -> None:
    response = client.post(URL + "tests.add", b"{nope", content_type="application/json")
    assert response.status_code == 400
    start = client.post(URL + "tests.add/start", b"{nope", content_type="application/json")
    assert start.status_code == 400
    assert calls == []


@pytest.mark.usefixtures("push_queue")
def test_push_delivery_with_params_that_no_longer_validate_answers_200_failed(
    client: Client,
) -> None:
    # Push queues retry every non-2xx answer; params that do not validate never will.
    headers = {"X-CloudTasks-TaskName": "t1", **PUSH}
    response = post(client, "tests.add", {"a": "not a number"}, **headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["type"].endswith("ValidationError")
    not_json = client.post(
        URL + "tests.add", b"{nope", content_type="application/json", headers=headers
    )
    assert (not_json.status_code, not_json.json()["status"]) == (200, "failed")
    assert calls == []


def test_push_delivery_still_needs_valid_credentials(client: Client, settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.allow_header_key"
    response = post(client, "tests.add", {"a": "x"}, **{"X-CloudTasks-TaskName": "t1"})
    assert response.status_code in {401, 403}
    assert calls == []


def test_push_delivery_of_valid_params_runs_the_task(client: Client) -> None:
    response = post(client, "tests.add", {"a": 1, "b": 1}, **{"X-CloudTasks-TaskName": "t2"})
    assert response.status_code == 200
    assert response.json()["result"] == 2


def test_push_delivery_for_an_unknown_task_answers_404_so_the_queue_retries(
    client: Client,
) -> None:
    # Decided: a rolling deploy can deliver a new task to an old instance; the queue's own
    # max-attempts bounds the retries.
    response = post(client, "tests.nope", {}, **{"X-CloudTasks-TaskName": "t3"})
    assert response.status_code == 404


def test_unknown_task_answers_404_json(client: Client) -> None:
    response = post(client, "tests.nope", {})
    assert response.status_code == 404
    assert "tests.nope" in response.json()["detail"]
    assert post(client, "tests.nope/start", {}).status_code == 404


@pytest.mark.usefixtures("push_queue")
def test_retryable_failure_of_a_push_delivery_answers_500_without_traceback(
    client: Client,
) -> None:
    response = post(client, "tests.flaky", {"token": "t1", "failures": 1}, **DELIVERY)
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["error"]["type"] == "tests.testapp.tasks.Transient"
    assert body["error"]["traceback"] is None
    assert body["retry_at"]
    assert body["retried_by"] == "push_queue"
    assert "the push queue that delivered it retries it" in body["detail"]
    assert "Traceback" not in response.content.decode()


def test_direct_call_failure_is_final_and_says_nobody_retries_it(client: Client) -> None:
    response = post(client, "tests.flaky", {"token": "d1", "failures": 1})
    assert response.status_code == 500  # a failure, which nothing retries
    body = response.json()
    assert (body["status"], body["attempt"], body["max_attempts"]) == ("failed", 1, 1)
    assert (body["retry_at"], body["retried_by"]) == (None, None)
    assert body["detail"].startswith("The run failed and was not retried: a direct call runs")
    assert body["error"]["type"] == "tests.testapp.tasks.Transient"
    assert attempts["d1"] == 1


def test_direct_call_runs_the_tasks_failure_hook_not_its_retry_hook(client: Client) -> None:
    seen: list[TaskStatus] = []

    def record(sender: Any, outcome: Any, **kwargs: Any) -> None:
        seen.append(outcome.status)

    task_finished.connect(record)
    try:
        post(client, "tests.api.always_fails", {})
    finally:
        task_finished.disconnect(record)
    assert seen == [TaskStatus.FAILED]


def test_direct_call_run_id_is_not_known_at_runs(client: Client) -> None:
    with override_backend(InMemoryBackend()):  # a backend that keeps results
        run_id = post(client, "tests.add", {"a": 1}).json()["run_id"]
        assert client.get(f"{URL}runs/{run_id}").status_code == 404


def test_cloud_tasks_headers_from_an_untrusted_caller_make_no_push_delivery(
    client: Client,
) -> None:
    headers = {"X-CloudTasks-TaskName": "t9", "X-CloudTasks-TaskRetryCount": "0"}
    response = post(client, "tests.api.always_fails", {}, **headers)
    assert response.status_code == 500
    body = response.json()
    assert (body["status"], body["retried_by"]) == ("failed", None)
    assert "direct call" in body["detail"]


@pytest.mark.usefixtures("push_queue")
def test_push_queue_credentials_without_cloud_tasks_headers_make_a_direct_call(
    client: Client,
) -> None:
    response = post(client, "tests.api.always_fails", {}, **PUSH)
    assert response.status_code == 500
    assert (response.json()["status"], response.json()["retried_by"]) == ("failed", None)


@pytest.mark.usefixtures("push_queue")
def test_push_delivery_of_the_last_attempt_says_nobody_retries_it(client: Client) -> None:
    headers = {"X-CloudTasks-TaskRetryCount": "2", **DELIVERY}
    response = post(client, "tests.api.always_fails", {}, **headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["retried_by"]) == ("failed", None)
    assert body["detail"] == "The run failed for good; nobody retries it."


def test_traceback_is_shown_only_with_debug(client: Client, settings: Any) -> None:
    settings.DEBUG = True
    body = post(client, "tests.flaky", {"token": "t2", "failures": 1}).json()
    assert "Traceback" in body["error"]["traceback"]


def test_discarded_run_answers_200_so_the_queue_stops(client: Client) -> None:
    response = post(client, "tests.flaky", {"token": "discard-me"})
    assert response.status_code == 200
    assert response.json()["status"] == "discarded"


@pytest.mark.usefixtures("push_queue")
@pytest.mark.parametrize(
    ("headers", "attempt", "code", "status"),
    [
        ({}, 1, 500, "scheduled"),
        ({"X-CloudTasks-TaskRetryCount": "1"}, 2, 500, "scheduled"),
        ({"x-cloudtasks-taskretrycount": "2"}, 3, 200, "failed"),
        ({"X-CLOUDTASKS-TASKEXECUTIONCOUNT": "2"}, 3, 200, "failed"),
        (
            {"X-CloudTasks-TaskRetryCount": "0", "X-CloudTasks-TaskExecutionCount": "7"},
            1,
            500,
            "scheduled",
        ),
    ],
)
def test_attempt_comes_from_cloud_tasks_headers_case_insensitively(
    client: Client, headers: dict[str, str], attempt: int, code: int, status: str
) -> None:
    response = post(client, "tests.api.always_fails", {}, **headers, **PUSH_WITH_QUEUE_NAME)
    assert response.status_code == code
    body = response.json()
    assert (body["attempt"], body["max_attempts"], body["status"]) == (attempt, 3, status)
    assert body["error"]["type"] == "builtins.RuntimeError"


@pytest.mark.usefixtures("push_queue")
def test_garbage_attempt_header_answers_422(client: Client) -> None:
    headers = {"X-CloudTasks-TaskRetryCount": "-1", **PUSH}
    response = post(client, "tests.add", {"a": 1}, **headers)
    assert response.status_code == 422


@pytest.mark.usefixtures("push_queue")
def test_run_id_header_is_reported(client: Client) -> None:
    response = post(client, "tests.add", {"a": 1}, **{"X-Task-Run-Id": "run-123", **PUSH})
    assert response.json()["run_id"] == "run-123"


def test_result_that_is_not_json_is_omitted(client: Client) -> None:
    response = post(client, "tests.api.opaque", {})
    assert response.status_code == 200
    assert response.json()["result"] is None
    assert response.json()["status"] == "succeeded"


def test_start_enqueues_on_the_backend_and_answers_202(client: Client) -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        response = post(client, "tests.add/start?delay=30&priority=5", {"a": 4})
        assert response.status_code == 202
        run_id = response.json()["run_id"]
        assert response.json()["status"] == "scheduled"
        (request,) = backend.pending()
        assert (request.run_id, request.key, request.priority) == (run_id, None, 5)
        assert calls == []

        status = client.get(f"{URL}runs/{run_id}").json()
        assert status["status"] == "scheduled"
        backend.run_all()
        status = client.get(f"{URL}runs/{run_id}").json()
        assert (status["status"], status["result"], status["attempts"]) == ("succeeded", 4, 1)


def test_start_takes_a_key_for_a_task_that_accepts_one(client: Client) -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        response = post(client, "tests.api.keyed/start?key=k1", {"label": "y"})
        assert response.status_code == 202
        (request,) = backend.pending()
        # Stored under the caller's scope: never shared with other callers or with code.
        assert request.key is not None
        assert (request.key[:5], request.key[-3:]) == ("http:", ":k1")


def test_start_with_an_option_the_backend_lacks_answers_400(client: Client) -> None:
    response = post(client, "tests.add/start?delay=5", {"a": 4})
    assert response.status_code == 400
    assert "ImmediateBackend" in response.json()["detail"]
    assert calls == []


def test_start_validates_params(client: Client) -> None:
    assert post(client, "tests.add/start", {"b": 1}).status_code == 422


def test_unknown_run_answers_404(client: Client) -> None:
    with override_backend(InMemoryBackend()):
        assert client.get(f"{URL}runs/nope").status_code == 404


def test_runs_without_a_results_backend_answer_501(client: Client) -> None:
    response = client.get(f"{URL}runs/whatever")
    assert response.status_code == 501
    assert "does not keep task results" in response.json()["detail"]


def test_custom_auth_callable_from_dotted_path(client: Client, settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.allow_header_key"
    assert post(client, "tests.add", {"a": 1}).status_code == 401
    assert post(client, "tests.add", {"a": 1}, **{"X-Key": "wrong"}).status_code == 401
    assert post(client, "tests.add", {"a": 1}, **{"X-Key": "let-me-in"}).status_code == 200
    assert post(client, "tests.add/start", {"a": 1}).status_code == 401
    assert client.get(f"{URL}runs/x").status_code == 401
    assert calls == [("tests.add", 1)]


def test_per_task_api_auth_overrides_the_setting(client: Client, settings: Any) -> None:
    assert post(client, "tests.api.private", {}).status_code == 401
    assert post(client, "tests.api.private", {}, **{"X-Key": "let-me-in"}).status_code == 200
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.allow_header_key"
    assert post(client, "tests.api.public", {}).status_code == 200


def test_ninja_auth_class_from_dotted_path(client: Client, settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.KeyAuth"
    assert post(client, "tests.add", {"a": 1}).status_code == 401
    assert post(client, "tests.add", {"a": 1}, Authorization="Bearer k").status_code == 200


def test_bad_auth_setting_fails_closed(client: Client, settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.unit.nowhere.auth"
    with pytest.raises(tasks.ConfigurationError):
        post(client, "tests.add", {"a": 1})
    assert calls == []


def test_openapi_lists_every_exposed_task_with_its_schema_and_docstring(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    for task_class in registry:
        if task_class.api_exposed is False:
            assert f"{URL}{task_class.name}" not in schema["paths"]
            continue
        operation = schema["paths"][f"{URL}{task_class.name}"]["post"]
        assert operation.get("description") == (rst_to_markdown(task_class.__doc__) or None)
        assert f"{URL}{task_class.name}/start" in schema["paths"]
    for path in (f"{URL}tests.add", f"{URL}tests.add/start"):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        add = body["schema"]
        assert add["properties"]["a"]["description"] == "The first addend."
        assert add["additionalProperties"] is False
    nested = schema["paths"][f"{URL}tests.api.nested"]["post"]["requestBody"]
    inner = nested["content"]["application/json"]["schema"]["properties"]["inner"]
    assert inner["properties"]["x"]["type"] == "integer"  # nested models written in place
    assert f"{URL}runs/{{run_id}}" in schema["paths"]


def test_openapi_shows_bearer_security_only_when_auth_is_on(client: Client, settings: Any) -> None:
    operation = client.get("/api/openapi.json").json()["paths"][f"{URL}tests.add"]["post"]
    assert "security" not in operation
    settings.TASKS_API_AUTHENTICATION = "oidc"
    protected = NinjaAPI(urls_namespace="tests-api-oidc")
    protected.add_router("/tasks/", api.TasksRouter())  # built while OIDC is configured
    schema = protected.get_openapi_schema(path_prefix="")
    assert schema["paths"]["/tasks/tests.add"]["post"]["security"]
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()


@pytest.fixture
def late_task() -> Iterator[None]:
    yield
    registry.unregister("tests.api.late")


@pytest.mark.usefixtures("late_task")
def test_task_registered_after_urls_were_built_warns_and_404s_with_the_reason(
    client: Client,
) -> None:
    post(client, "tests.add", {"a": 1})  # builds the URLs
    assert registry.urls_built
    namespace = {"name": "tests.api.late", "__module__": __name__, "__qualname__": "Late"}
    with pytest.warns(RuntimeWarning, match=r"tests\.api\.late.*no HTTP endpoint"):
        types.new_class(
            "Late", (tasks.Task[OpaqueParams],), exec_body=lambda ns: ns.update(namespace)
        )

    response = post(client, "tests.api.late", {})
    assert response.status_code == 404
    assert "registered after" in response.json()["detail"]


def test_task_classes_local_to_a_function_do_not_warn(client: Client) -> None:
    post(client, "tests.add", {"a": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        class LocalTask(tasks.Task[OpaqueParams]):
            name = "tests.api.local"

    registry.unregister("tests.api.local")


def test_router_is_a_ninja_router_mounted_by_the_user(client: Client) -> None:
    post(client, "tests.add", {"a": 1})
    assert isinstance(api.router, Router)
    assert api.router.mounted


class KeyAuth(HttpBearer):
    """A django-ninja auth class, named by dotted path in the setting."""

    def authenticate(self, request: Any, token: str) -> Any:
        return token == "k" or None


def test_the_task_gets_its_own_params_model_validated_from_the_body(client: Client) -> None:
    response = post(client, "tests.api.nested", {"inner": {"x": 3}})
    assert response.json()["result"] == 3
    ((_, params),) = calls
    assert type(params) is NestedParams
    assert params == NestedParams(inner=Inner(x=3))


def test_unknown_nested_fields_are_never_dropped_silently(client: Client) -> None:
    response = post(client, "tests.api.nested", {"inner": {"x": 3, "typo": 1}})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "inner", "typo"], "extra_forbidden")
    assert post(client, "tests.api.nested/start", {"inner": {"x": 3, "y": 1}}).status_code == 422
    assert calls == []


@pytest.mark.usefixtures("push_queue")
def test_push_delivery_with_a_garbage_attempt_header_answers_422_not_500(client: Client) -> None:
    headers = {"X-CloudTasks-TaskName": "t4", "X-CloudTasks-TaskRetryCount": "x", **PUSH}
    response = post(client, "tests.add", {"a": 1}, **headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "X-CloudTasks-TaskRetryCount"]
    assert calls == []


def test_empty_body_answers_422_and_body_that_is_not_an_object_answers_422(
    client: Client,
) -> None:
    # Django's test client drops the content type of an empty body: set it by hand.
    empty = client.generic("POST", URL + "tests.add", b"", CONTENT_TYPE="application/json")
    listed = client.post(URL + "tests.add", b"[1]", content_type="application/json")
    assert (empty.status_code, listed.status_code) == (422, 422)
    assert listed.json()["detail"][0]["loc"][0] == "body"
    assert calls == []


@pytest.mark.parametrize(
    "result",
    [
        None,
        7,
        1.5,
        float("nan"),
        float("inf"),
        "h\u00e9llo",
        [1, {"a": (1, 2)}],
        object(),
        OpaqueParams(),
        {"k": object()},
    ],
)
def test_envelope_json_is_the_envelope_models_json(result: Any) -> None:
    from django_generic_tasks.core.status import TaskStatus
    from django_generic_tasks.execution import Outcome

    outcome = Outcome("r1", "t", 1, 3, TaskStatus.SUCCEEDED, result)
    assert api.envelope_json(outcome) == api.envelope(outcome).model_dump_json().encode()


def test_a_router_built_while_auth_is_configured_authenticates_through_ninja(
    settings: Any,
) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.KeyAuth"
    settings.ROOT_URLCONF = "tests.protected_urls"
    client = Client()
    path = "/protected/tasks/tests.add"
    schema = client.get("/protected/openapi.json").json()  # builds the router now
    assert schema["paths"][path]["post"]["security"] == [{"TasksAuth": []}]
    assert client.post(path, {"a": 1}, content_type="application/json").status_code == 401
    headers = {"Authorization": "Bearer k"}
    ok = client.post(path, {"a": 1}, content_type="application/json", headers=headers)
    assert ok.status_code == 200
    refused = client.post(path, '{"a": 1}', content_type="text/plain", headers=headers)
    assert refused.status_code == 415
    assert calls == [("tests.add", 1)]


@override_settings(ROOT_URLCONF="tests.docs_urls")
def test_the_openapi_docs_can_be_kept_for_staff_or_turned_off() -> None:
    # README: NinjaAPI(docs_decorator=staff_member_required) / NinjaAPI(openapi_url=None).
    anonymous = Client()
    for page in ("/staff-docs/openapi.json", "/staff-docs/docs"):
        assert anonymous.get(page).status_code == 302  # to the admin login
    staff = Client()
    staff.force_login(User.objects.create_user("docs", is_staff=True))
    assert "/staff-docs/tasks/tests.add" in staff.get("/staff-docs/openapi.json").json()["paths"]
    assert anonymous.get("/no-docs/openapi.json").status_code == 404
    assert anonymous.get("/no-docs/docs").status_code == 404
