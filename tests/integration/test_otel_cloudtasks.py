"""OpenTelemetry through the Cloud Tasks emulator: the push request carries ``traceparent``
and the endpoint continues the producer's trace in every attempt."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests.integration.test_cloudtasks_emulator import Setup, wait_for
from tests.integration.test_cloudtasks_emulator import certs_server as certs_server  # noqa: PLC0414
from tests.integration.test_cloudtasks_emulator import (
    cloudtasks_emulator as cloudtasks_emulator,  # noqa: PLC0414
)
from tests.integration.test_cloudtasks_emulator import setup as setup  # noqa: PLC0414
from tests.integration.test_cloudtasks_emulator import signing_key as signing_key  # noqa: PLC0414
from tests.integration.test_cloudtasks_emulator import wsgi_server as wsgi_server  # noqa: PLC0414
from tests.otel_support import Otel
from tests.otel_support import otel as otel  # noqa: PLC0414 - a fixture
from tests.testapp import tasks as testapp

pytestmark = pytest.mark.slow


def test_a_pushed_run_continues_the_producer_trace_in_each_attempt(
    setup: Setup, otel: Otel
) -> None:
    handle = testapp.FlakyTask({"token": f"otel-{uuid.uuid4().hex}", "failures": 1}).start()
    wait_for(lambda: len(setup.runs.of(handle.id)) == 2, "two attempts", setup.emulator)

    def consumers() -> list:
        return [
            s
            for s in otel.spans()
            if s.kind is SpanKind.CONSUMER and s.attributes["messaging.message.id"] == handle.id
        ]

    wait_for(lambda: len(consumers()) == 2, "two consumer spans", setup.emulator)
    (producer,) = [s for s in otel.spans() if s.kind is SpanKind.PRODUCER]
    attempts = sorted(consumers(), key=lambda s: s.attributes["django_generic_tasks.attempt"])
    assert [s.attributes["django_generic_tasks.attempt"] for s in attempts] == [1, 2]
    assert {s.context.trace_id for s in attempts} == {producer.context.trace_id}
    assert {s.parent.span_id for s in attempts} == {producer.context.span_id}
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.UNSET]
