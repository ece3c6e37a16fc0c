"""Imported into child processes (``TASKS_TEST_IMPORT`` or a Celery app): installs the
OpenTelemetry SDK and appends each finished span to ``$OTEL_TEST_SPANS_FILE`` as JSON."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class FileSpanExporter(SpanExporter):
    """Appends spans to a file, one JSON object a line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans``."""
        with self.lock, open(self.path, "a") as out:
            for span in spans:
                assert span.context is not None
                out.write(
                    json.dumps(
                        {
                            "name": span.name,
                            "kind": span.kind.name,
                            "trace_id": format(span.context.trace_id, "032x"),
                            "span_id": format(span.context.span_id, "016x"),
                            "parent_id": format(span.parent.span_id, "016x")
                            if span.parent
                            else None,
                            "status": span.status.status_code.name,
                            "attributes": dict(span.attributes or {}),
                            "events": [event.name for event in span.events],
                        },
                        default=str,
                    )
                    + "\n"
                )
        return SpanExportResult.SUCCESS


def install() -> None:
    """Install the SDK when ``OTEL_TEST_SPANS_FILE`` is set."""
    path = os.environ.get("OTEL_TEST_SPANS_FILE")
    if path:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(path)))
        trace.set_tracer_provider(provider)


install()
