"""The real OpenTelemetry SDK with in-memory exporters, for one test at a time.

One SDK ``TracerProvider`` and ``MeterProvider`` live for the whole session (OpenTelemetry
sets its global providers once); the ``otel`` fixture makes them the global ones for one test
only, so every other test runs as a project without OpenTelemetry configured would.
``child_env()`` makes a child process (worker) install the SDK and write its finished spans
to a file, one JSON object a line (``tests/otel_child.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Otel:
    """The session's SDK providers and their in-memory exporters."""

    tracer_provider: TracerProvider
    spans_exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    metric_reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        """Spans finished so far in this test."""
        return list(self.spans_exporter.get_finished_spans())

    collected: dict[str, list[Any]] = field(default_factory=dict)

    def points(self, name: str) -> list[Any]:
        """Data points of metric ``name`` recorded in this test (collected now, deltas kept)."""
        data = self.metric_reader.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    self.collected.setdefault(metric.name, []).extend(metric.data.data_points)
        return self.collected.get(name, [])


@cache
def _session_otel() -> Otel:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    delta = AggregationTemporality.DELTA
    reader = InMemoryMetricReader(preferred_temporality={Counter: delta, Histogram: delta})
    meter_provider = MeterProvider(metric_readers=[reader])
    # Instruments made before a provider was set are proxies: point them at this one.
    metrics_internal._PROXY_METER_PROVIDER.on_set_meter_provider(meter_provider)
    return Otel(tracer_provider, exporter, meter_provider, reader)


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    """OpenTelemetry configured with the SDK and in-memory exporters, for this test only."""
    from django_generic_tasks import observability

    state = _session_otel()
    state.spans_exporter.clear()
    state.metric_reader.get_metrics_data()  # drop what earlier tests recorded (deltas)
    state.collected.clear()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", state.tracer_provider)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", state.meter_provider)
    assert observability.refresh()
    yield state
    monkeypatch.undo()
    observability.refresh()  # back to unconfigured for the next tests
    state.spans_exporter.clear()


def child_env(spans_file: Path) -> dict[str, str]:
    """Environment that makes a child Django process export its spans to ``spans_file``."""
    return {"OTEL_TEST_SPANS_FILE": str(spans_file)}


def read_child_spans(spans_file: Path) -> list[dict[str, Any]]:
    """The spans a child process wrote so far."""
    if not spans_file.exists():
        return []
    return [json.loads(line) for line in spans_file.read_text().splitlines() if line.strip()]


def hex_trace_id(span: ReadableSpan) -> str:
    """The span's trace id as 32 hex digits."""
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def hex_span_id(span: ReadableSpan) -> str:
    """The span's id as 16 hex digits."""
    assert span.context is not None
    return format(span.context.span_id, "016x")
