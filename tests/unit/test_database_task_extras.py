"""Django ``@task`` runs on ``DatabaseTaskBackend`` get this project's extras: the run admin
(and its retry), the dashboard, ``tasks_status``, ``tasks_prune`` and OpenTelemetry spans."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytest.importorskip("django.tasks", reason="DatabaseTaskBackend needs Django >= 6.0")

from django.tasks import TaskResultStatus
from opentelemetry.trace import SpanKind

from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests import djtasks
from tests.otel_support import Otel
from tests.otel_support import otel as otel  # noqa: PLC0414 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)
NAME = "django.tasks:tests.djtasks.failing_task_value_error"


def drain() -> int:
    worker = Worker(WorkerOptions(once=True, interval=0.02, concurrency=1))
    watchdog = threading.Timer(30, worker.stop)
    watchdog.start()
    try:
        return worker.run(install_signals=False)
    finally:
        watchdog.cancel()


def test_the_admin_lists_and_shows_a_django_task_run(admin_client: Client) -> None:
    result = djtasks.failing_task_value_error.enqueue()
    drain()
    page = admin_client.get("/admin/django_generic_tasks/taskrun/", {"task_name": NAME})
    assert result.id in page.content.decode()
    detail = admin_client.get(f"/admin/django_generic_tasks/taskrun/{result.id}/change/")
    text = detail.content.decode()
    assert NAME in text
    assert "This Task failed due to ValueError" in text


def test_the_admin_retry_runs_a_failed_django_task_run_again(admin_client: Client) -> None:
    result = djtasks.add.enqueue(2, 3)
    TaskRun.objects.update(
        status="failed", attempt=1, error_type="builtins.ValueError", error_message="x"
    )
    response = admin_client.post(
        "/admin/django_generic_tasks/taskrun/",
        {"action": "retry_runs", "_selected_action": [result.id]},
        follow=True,
    )
    assert response.status_code == 200
    assert drain() == 1
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        5,
        2,
    )


def test_the_dashboard_counts_django_task_runs_by_function(admin_client: Client) -> None:
    djtasks.failing_task_value_error.enqueue()
    djtasks.noop_task.enqueue()
    drain()
    page = admin_client.get("/admin/django_generic_tasks/dashboard/").content.decode()
    tasks = page[page.index('id="dgt-tasks"') :]
    assert f'<th scope="row">{NAME}</th><td>1</td><td>1</td><td>100.0%</td>' in tasks
    assert '<th scope="row">django.tasks:tests.djtasks.noop_task</th><td>1</td><td>0</td>' in tasks


def test_tasks_status_shows_a_failed_django_task_run() -> None:
    result = djtasks.failing_task_value_error.enqueue()
    djtasks.noop_task.using(
        queue_name="other", run_after=timezone.now() + timedelta(hours=1)
    ).enqueue()
    drain()
    out = StringIO()
    call_command("tasks_status", "--json", stdout=out)
    data = json.loads(out.getvalue())
    [failure] = data["last_failures"]
    assert (failure["id"], failure["error_type"]) == (result.id, "builtins.ValueError")
    [other] = [q for q in data["queues"] if q["queue"] == "other"]
    assert other["scheduled"] == 1


def test_tasks_prune_deletes_finished_django_task_runs_only() -> None:
    done = djtasks.noop_task.enqueue()
    drain()
    waiting = djtasks.noop_task.enqueue()
    TaskRun.objects.update(finished_at=timezone.now() - timedelta(days=30))
    TaskRun.objects.filter(pk=waiting.id).update(finished_at=None)
    call_command("tasks_prune", "--older-than", "7d", stdout=StringIO())
    assert [str(pk) for pk in TaskRun.objects.values_list("id", flat=True)] == [waiting.id]
    assert done.id != waiting.id


def test_a_django_task_run_is_traced_from_enqueue_to_its_attempt(otel: Otel) -> None:
    result = djtasks.add.enqueue(1, 2)
    drain()
    spans = otel.spans()
    [producer] = [s for s in spans if s.kind is SpanKind.PRODUCER]
    [consumer] = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.attributes["messaging.message.id"] == result.id


def test_a_paused_queue_holds_django_task_runs_until_it_is_resumed() -> None:
    from django_generic_tasks import pause_queue, resume_queue
    from django_generic_tasks.backends import DatabaseBackend

    result = djtasks.add.enqueue(2, 3)
    assert pause_queue(result.task.queue_name, backend=DatabaseBackend())
    try:
        drain()
        result.refresh()
        assert result.status == TaskResultStatus.READY
    finally:
        assert resume_queue(result.task.queue_name, backend=DatabaseBackend())
    drain()
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 5)
