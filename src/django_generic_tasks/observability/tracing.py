"""PRODUCER spans for ``start()``, CONSUMER spans for attempts, W3C trace context in between.

Span names and attributes follow the OpenTelemetry messaging semantic conventions: ``send
<queue>`` (``messaging.operation.type`` ``send``) when a run is handed to a backend, ``process
<queue>`` (``process``) for each attempt, ``messaging.destination.name`` the queue,
``messaging.message.id`` the run id. Each attempt's span is a *child* of the producer span
(the conventions allow a child when one message is processed on its own): one trace then shows
request -> start -> every attempt, retries as sibling attempt spans of the same run.

The context travels as a ``traceparent`` string (W3C Trace Context): in the ``TaskRun`` row,
in Celery message headers, in django.tasks run arguments and as the ``traceparent`` header of
a Cloud Tasks push.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import metrics

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..core.enqueue import EnqueueRequest
    from ..core.handles import TaskHandle
    from ..execution.attempts import Outcome

__all__ = [
    "current_traceparent",
    "end_process_span",
    "process_span",
    "submit",
    "submit_many",
]

SYSTEM = "django_generic_tasks"
TASK_ATTRIBUTE = metrics.TASK  # one name for spans and metrics
ATTEMPT_ATTRIBUTE = "django_generic_tasks.attempt"
OUTCOME_ATTRIBUTE = metrics.OUTCOME

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("django_generic_tasks")


def _producer_attributes(request: EnqueueRequest) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": request.queue,
        "messaging.message.id": request.run_id,
        TASK_ATTRIBUTE: request.task_name,
        ATTEMPT_ATTRIBUTE: request.attempt,
    }


def _inject(span: trace.Span) -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def submit(
    submit: Callable[..., TaskHandle[Any]],
    backend: Backend,
    request: EnqueueRequest,
    on_commit: bool,
) -> TaskHandle[Any]:
    """``dispatch.submit()`` inside a PRODUCER span whose context the run carries."""
    with _tracer.start_as_current_span(
        f"send {request.queue}", kind=SpanKind.PRODUCER, attributes=_producer_attributes(request)
    ) as span:
        request.trace_context = _inject(span) or ""
        return submit(backend, request, on_commit=on_commit)


def submit_many(
    submit_many: Callable[..., list[TaskHandle[Any]]],
    backend: Backend,
    requests: Sequence[EnqueueRequest],
    on_commit: bool,
) -> list[TaskHandle[Any]]:
    """``dispatch.submit_many()`` with one PRODUCER span per run, ended when the batch is sent."""
    spans = []
    for request in requests:
        span = _tracer.start_span(
            f"send {request.queue}",
            kind=SpanKind.PRODUCER,
            attributes=_producer_attributes(request),
        )
        request.trace_context = _inject(span) or ""
        spans.append(span)
    try:
        return submit_many(backend, requests, on_commit=on_commit)
    finally:
        for span in spans:
            span.end()


def parent_context(traceparent: str | None) -> otel_context.Context | None:
    """The context a ``traceparent`` string names (``None``: none or not valid)."""
    if not traceparent:
        return None
    ctx = _propagator.extract({"traceparent": traceparent})
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span (``None`` outside a recorded span)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Make the span a ``traceparent`` names the current one (the HTTP endpoint's hop)."""
    ctx = parent_context(traceparent)
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def process_span(
    queue: str,
    task_name: str,
    run_id: str,
    attempt: int,
    traceparent: str | None,
    trace_link: str | None = None,
) -> Iterator[trace.Span]:
    """The CONSUMER span of one attempt (child of its producer's), current while it runs;
    ``trace_link``: a caller's context, linked only (it picks neither trace nor sampling)."""
    parent = parent_context(traceparent)
    current = trace.get_current_span().get_span_context()
    links: list[Link] = []
    if parent is not None and current.is_valid:
        # An ambient span (e.g. the push request's server span) is already current and is
        # itself a descendant of the producer's: keep it as parent, link the producer.
        links.append(Link(trace.get_current_span(parent).get_span_context()))
        parent = None
    linked = parent_context(trace_link)
    if linked is not None:
        caller = trace.get_current_span(linked).get_span_context()
        links.append(Link(caller))
        if current.is_valid and current.trace_id == caller.trace_id:
            # The server span continued the caller's trace (HTTP instrumentation does): the
            # attempt, and the logs written in it, start a trace of their own.
            links.append(Link(current))
            parent = otel_context.Context()
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": run_id,
        TASK_ATTRIBUTE: task_name,
        ATTEMPT_ATTRIBUTE: attempt,
    }
    with _tracer.start_as_current_span(
        f"process {queue}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=True,
    ) as span:
        yield span


def end_process_span(span: trace.Span, outcome: Outcome) -> None:
    """Record how the attempt ended on its span (an error: an exception event, ERROR status)."""
    span.set_attribute(OUTCOME_ATTRIBUTE, metrics.outcome_name(outcome))
    if outcome.error is not None:
        error = outcome.error
        span.add_event(
            "exception",
            {
                "exception.type": error.type,
                "exception.message": error.message,
                "exception.stacktrace": error.traceback,
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))
