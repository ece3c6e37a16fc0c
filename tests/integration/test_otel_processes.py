"""OpenTelemetry across process boundaries: the producer's trace continues in a real
``tasks_worker`` process and a real ``celery worker`` (the SDK in both, spans written to a file
by the child, tests/otel_child.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from django_generic_tasks import conf
from django_generic_tasks.backends.celery import CeleryBackend
from tests.celery_app import make_app
from tests.conftest import need_service
from tests.integration.test_celery_workers import CeleryWorker, delete_queue, reachable
from tests.integration.worker_procs import ProcDB
from tests.otel_support import Otel, child_env, hex_span_id, hex_trace_id, read_child_spans
from tests.otel_support import otel as otel  # noqa: PLC0414 - a fixture
from tests.polling import wait_until
from tests.workerapp.tasks import FlakyRecordTask

pytestmark = pytest.mark.slow


def test_a_database_worker_process_continues_the_producer_trace(
    procdb: ProcDB, tmp_path: Path
) -> None:
    spans_file = tmp_path / "spans.jsonl"
    procdb.env.update(child_env(spans_file))
    procdb.env["TASKS_TEST_IMPORT"] += ",tests.otel_child"
    # Start in a child process too: the producer span is exported to the same file.
    procdb.start_runs(2)
    worker = procdb.start_worker("--once", "--interval", "0.05")
    assert worker.wait(60) == 0
    spans = read_child_spans(spans_file)
    producers = [s for s in spans if s["kind"] == "PRODUCER"]
    consumers = [s for s in spans if s["kind"] == "CONSUMER"]
    assert len(producers) == 2
    assert len(consumers) == 2
    by_run = {s["attributes"]["messaging.message.id"]: s for s in producers}
    for consumer in consumers:
        producer = by_run[consumer["attributes"]["messaging.message.id"]]
        assert consumer["trace_id"] == producer["trace_id"]
        assert consumer["parent_id"] == producer["span_id"]
        assert consumer["name"] == "process default"
        assert consumer["attributes"]["messaging.operation.type"] == "process"


CELERY_BROKER = "redis://127.0.0.1:6379/7"  # a Redis database of these tests' own


def test_a_celery_worker_continues_the_producer_trace_from_the_message_headers(
    otel: Otel, tmp_path: Path
) -> None:
    if not reachable(6379):
        need_service("Redis is not reachable on 127.0.0.1:6379")
    spans_file = tmp_path / "spans.jsonl"
    queue = f"dgt-otel-{uuid.uuid4().hex[:10]}"
    worker = CeleryWorker(
        CELERY_BROKER, queue, tmp_path, tmp_path / "worker.log", **child_env(spans_file)
    ).start()
    try:
        backend = CeleryBackend(app=make_app(CELERY_BROKER), queues={"default": queue})
        with conf.override_backend(backend):
            handle = FlakyRecordTask({"token": f"otel-{uuid.uuid4().hex}", "failures": 1}).start()

        def consumers() -> list[dict[str, Any]]:
            return [s for s in read_child_spans(spans_file) if s["kind"] == "CONSUMER"]

        wait_until(lambda: len(consumers()) == 2, timeout=60)
    finally:
        worker.stop()
        delete_queue(CELERY_BROKER, queue)
    (producer,) = [s for s in otel.spans() if s.kind is SpanKind.PRODUCER]
    attempts = sorted(consumers(), key=lambda s: s["attributes"]["django_generic_tasks.attempt"])
    assert [s["attributes"]["django_generic_tasks.attempt"] for s in attempts] == [1, 2]
    assert {s["trace_id"] for s in attempts} == {hex_trace_id(producer)}
    assert {s["parent_id"] for s in attempts} == {hex_span_id(producer)}
    assert {s["attributes"]["messaging.message.id"] for s in attempts} == {handle.id}
    assert [s["status"] for s in attempts] == ["ERROR", "UNSET"]
    assert attempts[0]["events"] == ["exception"]
