"""A JSON log formatter whose fields Google Cloud Logging understands.

Use it for the ``django_generic_tasks`` logger (or any other)::

    LOGGING = {
        "version": 1,
        "formatters": {
            "json": {"()": "django_generic_tasks.observability.logging.CloudLoggingFormatter"},
        },
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {"django_generic_tasks": {"handlers": ["stdout"], "level": "INFO"}},
    }

Each record becomes one line of JSON: ``severity``, ``message`` (with the traceback, when
there is one), ``time``, ``logger``, ``logging.googleapis.com/trace`` and ``.../spanId`` from
the current OpenTelemetry span (when ``opentelemetry-api`` is installed and a span is
recording), and the run's ``run_id``, ``task``, ``attempt`` and ``queue`` when the record has
them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["CloudLoggingFormatter"]

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
_RUN_FIELDS = (
    ("run_id", "run_id"),
    ("task_name", "task"),
    ("attempt", "attempt"),
    ("queue", "queue"),
)


class CloudLoggingFormatter(logging.Formatter):
    """Format records as Cloud Logging structured JSON, one object per line.

    ``project`` (default: env ``GOOGLE_CLOUD_PROJECT``) makes the trace field the full
    ``projects/<project>/traces/<trace id>`` Cloud Logging links to traces; without it the
    field is the bare trace id.
    """

    def __init__(self, *args: Any, project: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if project is None:
            import os

            project = os.environ.get("GOOGLE_CLOUD_PROJECT") or None
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, record.levelname),
            "message": message,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for attribute, field in _RUN_FIELDS:
            value = record.__dict__.get(attribute)
            if value is not None:
                entry[field] = value
        entry.update(self._trace_fields())
        return json.dumps(entry, default=str)

    def _trace_fields(self) -> dict[str, Any]:
        try:
            from opentelemetry import trace
        except ImportError:
            return {}
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return {}
        trace_id = format(context.trace_id, "032x")
        return {
            "logging.googleapis.com/trace": (
                f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            ),
            "logging.googleapis.com/spanId": format(context.span_id, "016x"),
            "logging.googleapis.com/trace_sampled": context.trace_flags.sampled,
        }
