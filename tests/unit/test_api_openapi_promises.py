"""The OpenAPI document promises only what each endpoint accepts, for its task and its auth."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from ninja import NinjaAPI
from ninja.security import APIKeyHeader
from pydantic import BaseModel, Field, ValidationError

import django_generic_tasks as tasks
from django_generic_tasks import api
from django_generic_tasks.api.schemas import request_body_openapi
from django_generic_tasks.backends import InMemoryBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.core.params import validate_params

pytestmark = pytest.mark.django_db
URL = "/api/tasks/"
RUN_HEADERS = {
    "X-Task-Run-Id",
    "X-CloudTasks-TaskRetryCount",
    "X-CloudTasks-TaskExecutionCount",
    "X-CloudTasks-TaskName",
}


class LabelParams(BaseModel):
    label: str = ""


class KeyTakingTask(tasks.Task[LabelParams]):
    """Takes a deduplication key over HTTP."""

    name = "tests.openapi.keyed"
    api_accepts_key = True

    def run(self) -> str:
        return self.params.label


class Line(BaseModel):
    sku: str


class PricedParams(BaseModel):
    lines: list[Line] = []
    rate: Decimal = Field(default=Decimal("0.2"), ge=0, lt=1)
    price: Decimal = Field(default=Decimal(1), ge=0, lt=1_000_000)
    delta: Decimal = Decimal(0)


class PushQueueKey(APIKeyHeader):
    """Stands in for the push queue's OIDC auth: requests it accepts may set push headers."""

    param_name = "X-Push-Key"
    authenticates_push_queue = True

    def authenticate(self, request: Any, key: str | None) -> Any:
        return key == "push" or None


def operation(schema: dict[str, Any], path: str) -> dict[str, Any]:
    return schema["paths"][f"{URL}{path}"]["post"]  # type: ignore[no-any-return]


def parameter_names(op: dict[str, Any]) -> set[str]:
    return {parameter["name"] for parameter in op.get("parameters", [])}


@pytest.fixture
def schema() -> dict[str, Any]:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def post(path: str, body: Any, **headers: str) -> Any:
    return Client().post(
        f"{URL}{path}", json.dumps(body), content_type="application/json", headers=headers
    )


def test_start_documents_a_key_only_for_a_task_with_api_accepts_key(
    schema: dict[str, Any],
) -> None:
    assert "key" not in parameter_names(operation(schema, "tests.add/start"))
    assert "key" in parameter_names(operation(schema, "tests.openapi.keyed/start"))
    with override_backend(InMemoryBackend()):
        assert post("tests.openapi.keyed/start?key=k1", {"label": "x"}).status_code == 202


def test_a_key_sent_to_a_task_without_api_accepts_key_is_still_refused() -> None:
    """Undocumented, not ignored: a caller counting on deduplication learns it has none."""
    with override_backend(InMemoryBackend()):  # a backend that could deduplicate
        response = post("tests.add/start?key=k1", {"a": 1})
        assert response.status_code == 400
        assert "api_accepts_key" in response.json()["detail"]
        assert post("tests.add/start?key=", {"a": 1}).status_code == 400


def test_start_lists_the_queues_it_accepts(schema: dict[str, Any]) -> None:
    queue = next(
        p for p in operation(schema, "tests.add/start")["parameters"] if p["name"] == "queue"
    )
    documented = next(branch for branch in queue["schema"]["anyOf"] if "enum" in branch)
    assert "default" in documented["enum"]
    for name in documented["enum"]:
        assert post(f"tests.add/start?queue={name}", {"a": 1}).status_code == 202


def test_start_links_its_run_to_the_run_status_operation(schema: dict[str, Any]) -> None:
    links = operation(schema, "tests.add/start")["responses"]["202"]["links"]
    assert links["GetRun"]["operationId"] == "get_task_run"
    assert links["GetRun"]["parameters"] == {"run_id": "$response.body#/run_id"}


def test_push_headers_are_not_documented_where_the_auth_ignores_them(
    schema: dict[str, Any],
) -> None:
    assert not parameter_names(operation(schema, "tests.add")) & RUN_HEADERS


def test_push_headers_are_documented_where_the_auth_authenticates_the_push_queue(
    settings: Any,
) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api_openapi_promises.PushQueueKey"
    pushed = NinjaAPI(urls_namespace="tests-openapi-push")
    pushed.add_router("/tasks/", api.TasksRouter())  # built while the push auth is configured
    document = pushed.get_openapi_schema(path_prefix="")
    op = document["paths"]["/tasks/tests.add"]["post"]
    assert parameter_names(op) >= RUN_HEADERS
    run_id = next(p for p in op["parameters"] if p["name"] == "X-Task-Run-Id")
    assert not re.match(run_id["schema"]["pattern"], "")  # documented as refused: it is


def test_an_empty_run_id_header_is_refused_from_the_push_queue(settings: Any) -> None:
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api_openapi_promises.PushQueueKey"
    response = post("tests.add", {"a": 1}, **{"X-Push-Key": "push", "X-Task-Run-Id": ""})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "X-Task-Run-Id"]


def test_an_empty_run_id_header_is_ignored_from_any_other_caller() -> None:
    response = post("tests.add", {"a": 1}, **{"X-Task-Run-Id": ""})
    assert response.status_code == 200
    assert response.json()["run_id"]  # a new id, as without the header


def test_a_nested_model_in_a_body_schema_refuses_unknown_fields() -> None:
    body = request_body_openapi(PricedParams)["requestBody"]["content"]["application/json"]
    line = body["schema"]["properties"]["lines"]["items"]
    assert line["additionalProperties"] is False
    with pytest.raises(ValidationError):
        validate_params(PricedParams, b'{"lines": [{"sku": "a", "extra": 1}]}')


@pytest.mark.parametrize(
    ("field", "accepted", "refused"),
    [
        ("rate", ["0", "0.2", ".5", "+0.99", "-0", "000.1"], ["1", "1.0", "5", "-0.1", "abc", ""]),
        ("price", ["999999.99", "0", "12"], ["1000000", "-1", "1e3", "x1"]),
        ("delta", ["-12.5", "3", "+.1"], ["--1", "1e3", "NaN", " "]),
    ],
)
def test_a_decimal_sent_as_a_string_is_documented_as_the_strings_it_takes(
    field: str, accepted: list[str], refused: list[str]
) -> None:
    body = request_body_openapi(PricedParams)["requestBody"]["content"]["application/json"]
    branches = body["schema"]["properties"][field]["anyOf"]
    pattern = next(branch["pattern"] for branch in branches if branch["type"] == "string")
    for text in accepted:
        assert re.match(pattern, text), text
        PricedParams.model_validate_json(json.dumps({field: text}))  # and the server takes it
    for text in refused:
        assert not re.match(pattern, text), text
