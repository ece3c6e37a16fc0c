"""OpenTelemetry across process boundaries: the producer's trace continues in a real
``tasks_worker`` process and a real ``celery worker`` (the SDK in both, spans written to a file
by the child, tests/otel_child.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind

from django_generic_tasks.backends import DatabaseBackend
from tests.integration.worker_procs import ProcDB, stop, wait_for
from tests.otel_support import Otel, child_env, hex_span_id, hex_trace_id, otel, read_child_spans

__all__ = ["otel"]

pytestmark = pytest.mark.slow


@pytest.fixture
def procdb(tmp_path: Path) -> Iterator[ProcDB]:
    db = ProcDB(tmp_path)
    try:
        yield db
    finally:
        db.close()


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
