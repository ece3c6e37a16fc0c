"""OpenTelemetry: PRODUCER/CONSUMER spans, trace context on every backend, run metrics,
the Cloud Logging JSON formatter -- with the real SDK and in-memory exporters."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from django_generic_tasks import observability
from django_generic_tasks.backends import DatabaseBackend, ImmediateBackend
from django_generic_tasks.backends.cloudtasks.request import build_create_task_request
from django_generic_tasks.core.dispatch import submit
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.execution import Attempt, execute
from django_generic_tasks.models import TaskRun
from django_generic_tasks.observability.logging import CloudLoggingFormatter
from django_generic_tasks.worker import Worker
from django_generic_tasks.worker.options import WorkerOptions
from tests.otel_support import Otel, hex_span_id, hex_trace_id
from tests.otel_support import otel as otel  # noqa: PLC0414 - a fixture
from tests.testapp.tasks import AddTask, FlakyTask


def _by_kind(spans: list, kind: SpanKind) -> list:
    return [s for s in spans if s.kind is kind]


def test_without_a_provider_nothing_is_traced_and_runs_carry_no_context() -> None:
    assert observability.active() is False
    assert observability.maybe is False  # from now on, one attribute read per hook
    request = EnqueueRequest.for_task(AddTask({"a": 1, "b": 2}))
    handle = submit(ImmediateBackend(), request)
    assert handle.result == 3
    assert request.trace_context is None


def test_a_provider_configured_late_is_found_by_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    assert observability.active() is False
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", TracerProvider())
    assert observability.maybe is False  # not looked again yet
    assert observability.refresh() is True
    assert observability.maybe is True
    monkeypatch.undo()
    assert observability.refresh() is False


def test_start_makes_a_producer_span_and_each_run_a_child_consumer_span(otel: Otel) -> None:
    handle = AddTask({"a": 1, "b": 2}).start(backend=ImmediateBackend())
    spans = otel.spans()
    (producer,) = _by_kind(spans, SpanKind.PRODUCER)
    (consumer,) = _by_kind(spans, SpanKind.CONSUMER)
    assert producer.name == "send default"
    assert consumer.name == "process default"
    assert producer.attributes["messaging.operation.type"] == "send"
    assert consumer.attributes["messaging.operation.type"] == "process"
    for span in (producer, consumer):
        assert span.attributes["messaging.destination.name"] == "default"
        assert span.attributes["messaging.message.id"] == handle.id
        assert span.attributes["django_generic_tasks.task.name"] == "tests.add"
    assert consumer.attributes["django_generic_tasks.attempt"] == 1
    assert consumer.attributes["django_generic_tasks.outcome"] == "succeeded"
    assert hex_trace_id(consumer) == hex_trace_id(producer)
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id


def test_the_producer_span_is_a_child_of_the_request_span(otel: Otel) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request_span:
        AddTask({"a": 1}).start(backend=ImmediateBackend())
    (producer,) = _by_kind(otel.spans(), SpanKind.PRODUCER)
    assert producer.parent.span_id == request_span.get_span_context().span_id


def test_retries_are_separate_error_attempt_spans_of_the_same_run(otel: Otel) -> None:
    handle = FlakyTask({"token": "otel-retry", "failures": 2}).start(backend=ImmediateBackend())
    spans = otel.spans()
    (producer,) = _by_kind(spans, SpanKind.PRODUCER)
    consumers = sorted(
        _by_kind(spans, SpanKind.CONSUMER),
        key=lambda s: s.attributes["django_generic_tasks.attempt"],
    )
    assert [s.attributes["django_generic_tasks.attempt"] for s in consumers] == [1, 2, 3]
    assert {s.attributes["messaging.message.id"] for s in consumers} == {handle.id}
    assert {s.parent.span_id for s in consumers} == {producer.context.span_id}
    assert [s.status.status_code for s in consumers] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert [s.attributes["django_generic_tasks.outcome"] for s in consumers] == [
        "retried",
        "retried",
        "succeeded",
    ]
    exception = consumers[0].events[0]
    assert exception.name == "exception"
    assert exception.attributes["exception.type"] == "tests.testapp.tasks.Transient"
    assert exception.attributes["exception.message"] == "failure 1"
    assert "Traceback" in exception.attributes["exception.stacktrace"]


def test_the_run_metrics_count_outcomes_and_record_durations(otel: Otel) -> None:
    FlakyTask({"token": "otel-metrics", "failures": 1}).start(backend=ImmediateBackend())
    finished = otel.points("django_generic_tasks.runs.finished")
    counts = {p.attributes["django_generic_tasks.outcome"]: p.value for p in finished}
    assert counts == {"retried": 1, "succeeded": 1}
    assert {p.attributes["django_generic_tasks.task.name"] for p in finished} == {"tests.flaky"}
    assert {p.attributes["messaging.destination.name"] for p in finished} == {"default"}
    durations = otel.points("django_generic_tasks.run.duration")
    assert sum(p.count for p in durations) == 2
    waits = otel.points("django_generic_tasks.queue.wait")
    assert sum(p.count for p in waits) == 1  # the retry waited for its run_after


def test_an_incoming_traceparent_is_continued_by_execute(otel: Otel) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    execute(Attempt(task_name="tests.add", params={"a": 1}, run_id="r1", trace_context=parent))
    (consumer,) = _by_kind(otel.spans(), SpanKind.CONSUMER)
    assert hex_trace_id(consumer) == "0af7651916cd43dd8448eb211c80319c"
    assert consumer.parent.span_id == int("b7ad6b7169203331", 16)


def test_a_malformed_traceparent_starts_a_new_trace(otel: Otel) -> None:
    outcome = execute(
        Attempt(task_name="tests.add", params={"a": 1}, run_id="r2", trace_context="garbage")
    )
    assert outcome.result == 1
    (consumer,) = _by_kind(otel.spans(), SpanKind.CONSUMER)
    assert consumer.parent is None


def test_an_unknown_task_is_an_error_consumer_span(otel: Otel) -> None:
    execute(Attempt(task_name="tests.no-such-task", params={}, run_id="r3", queue="emails"))
    (consumer,) = _by_kind(otel.spans(), SpanKind.CONSUMER)
    assert consumer.name == "process emails"
    assert consumer.status.status_code is StatusCode.ERROR


def pushed_headers(request: EnqueueRequest) -> dict[str, str]:
    """The HTTP headers of the Cloud Tasks task that ``request`` becomes."""
    built = build_create_task_request(
        request,
        parent="projects/p/locations/l/queues/q",
        url="http://x/",
        service_account_email=None,
        audience="a",
    )
    return built["task"]["http_request"]["headers"]


def test_cloud_tasks_pushes_carry_the_traceparent_header(otel: Otel) -> None:
    request = EnqueueRequest.for_task(AddTask({"a": 1}))
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("send") as span:
        from django_generic_tasks.observability.tracing import current_traceparent

        request.trace_context = current_traceparent()
    headers = pushed_headers(request)
    assert headers["traceparent"].split("-")[1] == format(span.get_span_context().trace_id, "032x")


def test_untraced_cloud_tasks_pushes_have_no_traceparent_header() -> None:
    assert "traceparent" not in pushed_headers(EnqueueRequest.for_task(AddTask({"a": 1})))


@pytest.mark.django_db(transaction=True)
def test_the_database_row_keeps_the_trace_context_and_the_worker_continues_it(
    otel: Otel,
) -> None:
    handle = AddTask({"a": 4}).start(backend=DatabaseBackend())
    row = TaskRun.objects.get()
    (producer,) = _by_kind(otel.spans(), SpanKind.PRODUCER)
    assert row.trace_context is not None
    assert row.trace_context.split("-")[2] == hex_span_id(producer)
    worker = Worker(WorkerOptions(once=True, interval=0.02, concurrency=1))
    worker.run(install_signals=False)
    (consumer,) = _by_kind(otel.spans(), SpanKind.CONSUMER)
    assert consumer.attributes["messaging.message.id"] == handle.id
    assert consumer.parent.span_id == producer.context.span_id
    waits = otel.points("django_generic_tasks.queue.wait")
    assert sum(p.count for p in waits) == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_gauges_report_queue_depth_and_oldest_wait() -> None:
    from datetime import timedelta

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from django_generic_tasks.observability.metrics import observe_database_queues

    AddTask({"a": 1}).start(backend=DatabaseBackend())
    AddTask({"a": 2}).start(backend=DatabaseBackend(), delay=timedelta(hours=1))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    assert observe_database_queues(meter_provider=provider) is True
    assert observe_database_queues(meter_provider=provider) is False
    points: dict[str, list] = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    provider.shutdown()
    state = "django_generic_tasks.queue.state"
    queue = "messaging.destination.name"
    depth = {
        (p.attributes[queue], p.attributes[state]): p.value
        for p in points["django_generic_tasks.queue.depth"]
    }
    assert depth[("default", "waiting")] == 1
    assert depth[("default", "scheduled")] == 1
    (oldest,) = points["django_generic_tasks.queue.oldest_wait"]
    assert oldest.attributes == {queue: "default"}
    assert oldest.value >= 0


def test_the_json_formatter_writes_cloud_logging_fields(otel: Otel) -> None:
    formatter = CloudLoggingFormatter(project="proj")
    record = logging.LogRecord(
        "django_generic_tasks", logging.WARNING, __file__, 1, "hi %s", ("x",), None
    )
    record.run_id, record.task_name, record.attempt, record.queue = "r", "t", 2, "q"
    with trace.get_tracer("test").start_as_current_span("s") as span:
        entry = json.loads(formatter.format(record))
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "hi x"
    assert entry["logging.googleapis.com/trace"] == f"projects/proj/traces/{trace_id}"
    assert (entry["run_id"], entry["task"], entry["attempt"], entry["queue"]) == ("r", "t", 2, "q")


def test_the_json_formatter_works_without_a_span() -> None:
    record = logging.LogRecord("django_generic_tasks", logging.ERROR, __file__, 1, "boom", (), None)
    entry = json.loads(CloudLoggingFormatter(project=None).format(record))
    assert entry["severity"] == "ERROR"
    assert "logging.googleapis.com/trace" not in entry


@pytest.mark.django_db(transaction=True)
def test_async_runs_on_the_workers_event_loop_get_their_consumer_spans_and_metrics(
    otel: Otel,
) -> None:
    from tests.testapp.tasks import AsyncEchoTask

    handles = [AsyncEchoTask({"value": f"v{n}"}).start(backend=DatabaseBackend()) for n in range(3)]
    producers = {hex_span_id(s) for s in _by_kind(otel.spans(), SpanKind.PRODUCER)}
    worker = Worker(WorkerOptions(once=True, interval=0.02, concurrency=1, async_concurrency=5))
    worker.run(install_signals=False)
    consumers = _by_kind(otel.spans(), SpanKind.CONSUMER)
    assert sorted(c.attributes["messaging.message.id"] for c in consumers) == sorted(
        h.id for h in handles
    )
    assert {f"{c.parent.span_id:016x}" for c in consumers} == producers  # each its own parent
    finished = otel.points("django_generic_tasks.runs.finished")
    assert sum(p.value for p in finished) == 3
