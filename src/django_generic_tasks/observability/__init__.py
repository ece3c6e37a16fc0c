"""OpenTelemetry traces and metrics, and a Cloud Logging JSON formatter (extra ``otel``).

The core modules ask ``active()`` at their hook points and call into ``tracing`` only when it is
true: with ``opentelemetry-api`` missing, or installed with no tracer or meter provider set, a
start or a run costs one cheap call more and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["IN_SPAN", "active"]

IN_SPAN = "in-span"
"""``execute(trace_context=IN_SPAN)``: the attempt's span is open already (by identity)."""

_trace: Any = None
_metrics: Any = None


def _active_now() -> bool:
    return _trace._TRACER_PROVIDER is not None or _metrics._METER_PROVIDER is not None


def _never() -> bool:
    return False


def _first_check() -> bool:
    """Whether a tracer or meter provider is configured (so spans and metrics are recorded).

    The first call imports ``opentelemetry`` (when installed) and rebinds ``active`` to a
    check of two module attributes, cheap enough for every start and run.
    """
    global active, _trace, _metrics
    try:
        from opentelemetry import trace
        from opentelemetry.metrics import _internal as metrics_internal
    except ImportError:
        active = _never
        return False
    _trace, _metrics = trace, metrics_internal
    # Providers named by OTEL_PYTHON_*_PROVIDER are installed on first get: do it once here.
    trace.get_tracer_provider()
    metrics_internal.get_meter_provider()
    active = _active_now
    return _active_now()


active: Callable[[], bool] = _first_check
"""Whether OpenTelemetry is recording (a tracer or meter provider is set): the hook check."""


def __getattr__(name: str) -> Any:
    # ``observability.tracing`` / ``.metrics`` / ``.logging`` import opentelemetry: on first use.
    if name in ("tracing", "metrics", "logging"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
