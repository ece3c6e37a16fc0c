"""Whose headers are believed (issue 21, items 4 and 5): push headers (attempt, run id) from a
push queue that something authenticates (OIDC, an emulator the project may use, or
``TASKS_TRUST_PUSH_HEADERS`` for a proxy that does), else not, with check W204; a caller's
``traceparent`` is a span parent only from the trusted push queue (or with
``TASKS_TRUST_TRACEPARENT``), else a span link."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from opentelemetry.trace import SpanKind

from django_generic_tasks.backends import CloudTasksBackend
from django_generic_tasks.check_ids import CheckId
from django_generic_tasks.core.status import new_run_id
from django_generic_tasks.security.checks import check_push_queue_trust
from tests.otel_support import Otel, hex_trace_id
from tests.otel_support import otel as otel  # noqa: PLC0414 - a fixture

pytestmark = pytest.mark.django_db

URL = "/api/tasks/tests.add"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


def cloud_tasks(emulator_host: str | None = None, allow_emulator: bool = False) -> Any:
    return CloudTasksBackend(
        project="p",
        location="l",
        queue="q",
        base_url="https://app.example.test/api/tasks/",
        service_account_email="tasks@p.iam.gserviceaccount.com",
        emulator_host=emulator_host,
        allow_emulator=allow_emulator,
    )


def deliver(run_id: str, retry_count: int = 2, **headers: str) -> dict[str, Any]:
    response = Client().post(
        URL,
        {"a": 1},
        content_type="application/json",
        headers={
            "X-CloudTasks-TaskRetryCount": str(retry_count),
            "X-CloudTasks-QueueName": "q",
            "X-Task-Run-Id": run_id,
            **headers,
        },
    )
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def w204() -> list[Any]:
    messages = check_push_queue_trust()
    assert all(m.id == CheckId.CLOUDTASKS_PUSH_QUEUE_UNAUTHENTICATED for m in messages)
    return messages


def test_an_allowed_emulator_push_keeps_its_attempt_and_run_id(settings: Any) -> None:
    settings.TASKS_BACKEND = cloud_tasks("127.0.0.1:1", allow_emulator=True)
    run_id = new_run_id()
    body = deliver(run_id)
    assert (body["run_id"], body["attempt"]) == (run_id, 3)
    assert w204() == []


def test_an_emulator_refused_outside_debug_earns_no_trust(settings: Any) -> None:
    settings.DEBUG = False
    settings.TASKS_BACKEND = cloud_tasks("127.0.0.1:1")  # not allowed: E203 says so
    run_id = new_run_id()
    body = deliver(run_id)
    assert body["run_id"] != run_id
    assert body["attempt"] == 1


def test_without_anything_authenticating_the_push_queue_headers_are_ignored_and_w204_says_so(
    settings: Any,
) -> None:
    settings.TASKS_BACKEND = cloud_tasks()
    run_id = new_run_id()
    body = deliver(run_id)
    assert (body["run_id"] != run_id, body["attempt"]) == (True, 1)
    [warning] = w204()
    assert "tests.add" in warning.msg
    assert "TASKS_TRUST_PUSH_HEADERS" in warning.hint


def test_trust_push_headers_believes_a_proxy_authenticated_push_queue(settings: Any) -> None:
    settings.TASKS_BACKEND = cloud_tasks()
    settings.TASKS_TRUST_PUSH_HEADERS = True
    run_id = new_run_id()
    body = deliver(run_id)
    assert (body["run_id"], body["attempt"]) == (run_id, 3)
    assert w204() == []


def test_oidc_authenticates_the_push_queue_so_no_w204(settings: Any) -> None:
    settings.TASKS_BACKEND = cloud_tasks()
    settings.TASKS_API_AUTHENTICATION = "oidc"
    # Tasks of other test modules with their own (session) auth may still be listed.
    assert not any("tests.add" in m.msg for m in w204())


def test_other_backends_need_no_push_queue_trust(settings: Any) -> None:
    settings.TASKS_BACKEND = "django_generic_tasks.backends.DatabaseBackend"
    assert w204() == []


def consumer_span(otel: Otel) -> Any:
    (span,) = [s for s in otel.spans() if s.kind is SpanKind.CONSUMER]
    return span


def test_a_direct_callers_traceparent_is_only_a_link(otel: Otel) -> None:
    response = Client().post(
        URL, {"a": 1}, content_type="application/json", headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    span = consumer_span(otel)
    assert hex_trace_id(span) != CALLER_TRACE
    assert span.parent is None
    assert [format(link.context.trace_id, "032x") for link in span.links] == [CALLER_TRACE]


def test_forged_push_headers_do_not_make_a_traceparent_a_parent(otel: Otel) -> None:
    deliver(new_run_id(), traceparent=TRACEPARENT)  # no trust configured: a direct call
    assert hex_trace_id(consumer_span(otel)) != CALLER_TRACE


def test_the_trusted_push_queues_traceparent_is_the_parent(otel: Otel, settings: Any) -> None:
    settings.TASKS_BACKEND = cloud_tasks("127.0.0.1:1", allow_emulator=True)
    deliver(new_run_id(), traceparent=TRACEPARENT)
    span = consumer_span(otel)
    assert hex_trace_id(span) == CALLER_TRACE
    assert span.parent.span_id == int("b7ad6b7169203331", 16)


def test_trust_traceparent_continues_a_direct_callers_trace(otel: Otel, settings: Any) -> None:
    settings.TASKS_TRUST_TRACEPARENT = True
    Client().post(
        URL, {"a": 1}, content_type="application/json", headers={"traceparent": TRACEPARENT}
    )
    assert hex_trace_id(consumer_span(otel)) == CALLER_TRACE
