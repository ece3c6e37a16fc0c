"""OpenTelemetry traces and metrics, and a Cloud Logging JSON formatter (extra ``otel``).

The app installs this module as ``start()``'s producer tracing (``core.running``);
``start()`` tests ``maybe and active()`` and calls ``submit()`` (into ``tracing``) only when
it is true; each attempt chain holds the tracing and metrics middleware only when it was true
as the chain was built. ``maybe`` is a plain flag: it turns false the
first time ``active()`` finds neither a tracer nor a meter provider (``opentelemetry-api``
missing, or installed and not configured), so from then on a start or a run pays one attribute
read. Configure the SDK before the first task starts, or call ``refresh()`` after configuring
it later (``tasks_worker`` does when it starts). A configured provider stays configured
(OpenTelemetry sets its global providers once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..core.enqueue import EnqueueRequest
    from ..core.handles import TaskHandle

__all__ = ["active", "maybe", "refresh", "submit", "submit_many"]

maybe = True
"""False once ``active()`` found OpenTelemetry unconfigured (until ``refresh()``)."""

_trace: Any = None
_metrics: Any = None
_imported = False


def active() -> bool:
    """Whether a tracer or meter provider is configured (spans and metrics are recorded).

    Imports ``opentelemetry`` on first use (when installed); sets ``maybe`` to the answer.
    """
    global maybe, _trace, _metrics, _imported
    if not _imported:
        _imported = True
        try:
            from opentelemetry import trace
            from opentelemetry.metrics import _internal as metrics_internal
        except ImportError:
            maybe = False
            return False
        _trace, _metrics = trace, metrics_internal
    if _trace is None:
        maybe = False
        return False
    # Providers named by OTEL_PYTHON_*_PROVIDER are installed by the first get.
    configured = _trace._TRACER_PROVIDER is not None or _metrics._METER_PROVIDER is not None
    if not configured:
        _trace.get_tracer_provider()
        _metrics.get_meter_provider()
        configured = _trace._TRACER_PROVIDER is not None or _metrics._METER_PROVIDER is not None
    maybe = configured
    return configured


def refresh() -> bool:
    """Look again for a configured provider (after configuring OpenTelemetry late); return
    whether one is configured."""
    global maybe
    from ..middleware import forget_chains

    maybe = True
    forget_chains()  # the attempt chains hold tracing and metrics only while configured
    return active()


def submit(
    submit: Callable[..., TaskHandle[Any]],
    backend: Backend,
    request: EnqueueRequest,
    on_commit: bool,
) -> TaskHandle[Any]:
    """``start()``'s hand-over inside a PRODUCER span whose context the run carries."""
    from . import tracing

    return tracing.submit(submit, backend, request, on_commit)


def submit_many(
    submit_many: Callable[..., list[TaskHandle[Any]]],
    backend: Backend,
    requests: Sequence[EnqueueRequest],
    on_commit: bool,
) -> list[TaskHandle[Any]]:
    """A batch's hand-over with one PRODUCER span per run."""
    from . import tracing

    return tracing.submit_many(submit_many, backend, requests, on_commit)


def __getattr__(name: str) -> Any:
    # ``observability.tracing`` / ``.metrics`` / ``.logging`` import opentelemetry: on first use.
    if name in ("tracing", "metrics", "logging"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
