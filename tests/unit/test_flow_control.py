"""Flow control on one process: option validation, ``RetryAfter`` and its header helper,
pausing (Python, ``tasks_queue``, the admin, ``tasks_status``, the dashboard), waiting reasons,
and the backends that refuse limits (Celery, Cloud Tasks, django.tasks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend, ImmediateBackend
from django_generic_tasks.core.flow import parse_rate_limit
from django_generic_tasks.core.status import ErrorInfo, TaskStatus
from django_generic_tasks.exceptions import retry_after_seconds
from django_generic_tasks.execution import Outcome
from django_generic_tasks.execution.attempts import Decision
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.contract.flow_tasks import ContractLimited, ContractRated
from tests.testapp.tasks import AddTask

ADMIN = "/admin/django_generic_tasks/taskrun/"
DASHBOARD = "/admin/django_generic_tasks/dashboard/"


class P(BaseModel):
    n: int = 0


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True])
def test_a_concurrency_limit_that_is_not_a_positive_integer_is_refused_at_definition(
    value: Any,
) -> None:
    with pytest.raises(tasks.TaskDefinitionError, match="concurrency_limit"):

        class Bad(tasks.Task[P]):
            name = "tests.flow.bad_limit"
            concurrency_limit = value


@pytest.mark.parametrize("value", ["600", "0/s", "10/d", "ten/s", 10, "/m"])
def test_a_rate_limit_that_is_not_count_per_period_is_refused_at_definition(value: Any) -> None:
    with pytest.raises(tasks.TaskDefinitionError, match="rate_limit"):

        class Bad(tasks.Task[P]):
            name = "tests.flow.bad_rate"
            rate_limit = value


def test_rate_limits_read_per_second_minute_and_hour() -> None:
    assert parse_rate_limit("600/m").interval == pytest.approx(0.1)
    assert parse_rate_limit(" 5 / s ").interval == pytest.approx(0.2)
    assert parse_rate_limit("3600/h").interval == pytest.approx(1.0)
    assert str(parse_rate_limit("600/m")) == "600/m"


def test_a_key_method_that_returns_no_string_fails_the_start() -> None:
    class BadKey(tasks.Task[P]):
        name = "tests.flow.bad_key"
        concurrency_limit = 2

        def concurrency_key(self) -> str:
            return ""

        def run(self) -> None: ...

    with pytest.raises(tasks.InvalidOptionError, match="concurrency_key"):
        BadKey({}).start(backend=ImmediateBackend())


def test_tasks_without_limits_carry_no_flow_spec() -> None:
    from django_generic_tasks.core.enqueue import EnqueueRequest

    assert EnqueueRequest.for_task(AddTask({"a": 1})).flow is None
    spec = EnqueueRequest.for_task(ContractLimited({"token": "t", "key": "k"})).flow
    assert spec is not None
    assert (spec.concurrency_key, spec.concurrency_limit) == ("k", 1)


# -- RetryAfter ---------------------------------------------------------------------------------


def test_retry_after_reads_delta_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120") == 120.0
    later = datetime.now(UTC) + timedelta(seconds=90)
    assert retry_after_seconds(format_datetime(later, usegmt=True)) == pytest.approx(90, abs=2)
    past = datetime.now(UTC) - timedelta(hours=1)
    assert retry_after_seconds(format_datetime(past, usegmt=True)) == 0.0
    assert retry_after_seconds(None, default=7) == 7
    assert retry_after_seconds("soon", default=8) == 8
    assert retry_after_seconds("-5", default=9) == 9


def test_retry_after_from_a_429_response_is_due_then_and_says_why() -> None:
    response = SimpleNamespace(status_code=429, headers={"Retry-After": "30"})
    before = datetime.now(UTC)
    error = tasks.RetryAfter.from_response(response)
    assert before + timedelta(seconds=29) < error.retry_at < before + timedelta(seconds=31)
    assert error.reason == "HTTP 429"
    assert not error.counts_as_attempt
    assert "HTTP 429" in str(error)
    none = tasks.RetryAfter.from_response(SimpleNamespace(status=503, headers={}), default=5)
    assert none.retry_at < datetime.now(UTC) + timedelta(seconds=6)


@pytest.mark.parametrize("when", [datetime(2030, 1, 1), "30", float("nan"), True])
def test_retry_after_refuses_a_time_it_cannot_read(when: Any) -> None:
    with pytest.raises(tasks.InvalidOptionError):
        tasks.RetryAfter(when)


def test_the_push_answer_to_retry_after_is_503_with_its_header() -> None:
    from django_generic_tasks.backends.cloudtasks.push import answer_status, retry_after_header

    at = datetime.now(UTC) + timedelta(seconds=42)
    error = ErrorInfo("django_generic_tasks.exceptions.RetryAfter", "busy", "")
    outcome = Outcome("r", "t", 1, 1, TaskStatus.FAILED, None, error, Decision(True, at, True))
    assert answer_status(outcome) == 503
    assert retry_after_header(outcome) in ("42", "41")
    other = Outcome("r", "t", 1, 2, TaskStatus.FAILED, None, ErrorInfo("x.E", "", ""))
    other.decision = Decision(True, at)
    assert answer_status(other) == 500
    assert retry_after_header(other) is None


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("limited", [ContractLimited, ContractRated])
def test_cloud_tasks_refuses_limits_at_start(limited: Any) -> None:
    pytest.importorskip("google.cloud.tasks_v2")
    from django_generic_tasks.backends import CloudTasksBackend

    backend = CloudTasksBackend(
        project="p", location="l", queue="q", base_url="https://example.com/tasks/"
    )
    with pytest.raises(tasks.UnsupportedOptionError, match="cannot honour"):
        limited({"token": "t"}).start(backend=backend)


def test_the_capability_table_says_who_honours_limits() -> None:
    from django_generic_tasks.backends.capabilities import render_table

    table = render_table()
    assert "concurrency limit" in table
    assert "rate limit" in table
    database = next(line for line in table.splitlines() if "`DatabaseBackend`" in line)
    assert "across workers" in database
    celery = next(line for line in table.splitlines() if "`CeleryBackend`" in line)
    assert "refused" in celery


# -- pausing ------------------------------------------------------------------------------------


def drain() -> int:
    return Worker(WorkerOptions(once=True, interval=0.01, concurrency=2)).run(install_signals=False)


@pytest.mark.django_db(transaction=True)
def test_a_paused_queue_waits_while_others_run_and_runs_once_resumed() -> None:
    backend = DatabaseBackend()
    AddTask({"a": 1}).start(backend=backend, queue="mail")
    AddTask({"a": 2}).start(backend=backend, queue="other")
    assert tasks.pause_queue("mail", backend=backend) is True
    assert tasks.pause_queue("mail", backend=backend) is False
    assert drain() == 1
    assert TaskRun.objects.get(queue="mail").status == "ready"
    assert [(p.kind, p.name) for p in tasks.paused(backend=backend)] == [("queue", "mail")]
    assert tasks.resume_queue("mail", backend=backend) is True
    assert tasks.resume_queue("mail", backend=backend) is False
    assert drain() == 1
    assert set(TaskRun.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.django_db(transaction=True)
def test_a_paused_task_waits_on_every_queue() -> None:
    backend = DatabaseBackend()
    AddTask({"a": 1}).start(backend=backend)
    tasks.pause_task(AddTask, backend=backend)
    assert drain() == 0
    tasks.resume_task(AddTask.name, backend=backend)
    assert drain() == 1


def test_backends_without_pausing_refuse_it() -> None:
    with pytest.raises(tasks.UnsupportedOptionError):
        tasks.pause_queue("mail", backend=ImmediateBackend())
    assert tasks.paused(backend=ImmediateBackend()) == []


@pytest.mark.django_db
def test_tasks_queue_pauses_lists_and_resumes() -> None:
    def run(*args: str) -> str:
        out = StringIO()
        call_command("tasks_queue", *args, "--database", "default", stdout=out)
        return out.getvalue()

    assert run("pause", "mail") == "Queue 'mail' paused.\n"
    assert run("pause", "mail") == "Queue 'mail' was already paused.\n"
    assert run("pause", "tests.add", "--task") == "Task 'tests.add' paused.\n"
    listed = run("list")
    assert "queue  mail  paused since" in listed
    assert "task   tests.add" in listed
    status = StringIO()
    call_command("tasks_status", "--json", stdout=status)
    assert [(p["kind"], p["name"]) for p in json.loads(status.getvalue())["paused"]] == [
        ("queue", "mail"),
        ("task", "tests.add"),
    ]
    text = StringIO()
    call_command("tasks_status", stdout=text)
    assert "Paused" in text.getvalue()
    assert "mail" in text.getvalue()
    assert run("resume", "mail") == "Queue 'mail' resumed.\n"
    assert run("resume", "mail") == "Queue 'mail' was not paused.\n"
    with pytest.raises(CommandError, match="name"):
        run("pause")
    with pytest.raises(CommandError):
        run("pause", "x" * 300)


@pytest.mark.django_db
def test_the_admin_pauses_and_resumes_and_says_why_runs_wait(admin_client: Client) -> None:
    AddTask({"a": 1}).start(backend=DatabaseBackend(), queue="mail")
    run = TaskRun.objects.get()
    response = admin_client.post(
        ADMIN, {"action": "pause_queues", "_selected_action": [str(run.pk)]}, follow=True
    )
    assert "Paused queues: mail" in response.content.decode()
    page = admin_client.get(ADMIN).content.decode()
    assert "queue paused since" in page
    dashboard = admin_client.get(DASHBOARD).content.decode()
    assert 'id="dgt-paused"' in dashboard
    assert "mail" in dashboard
    response = admin_client.post(
        ADMIN,
        {"action": "resume_queues_and_tasks", "_selected_action": [str(run.pk)]},
        follow=True,
    )
    assert "Resumed: queue mail" in response.content.decode()
    assert store.using().queue.flow.paused() == []


@pytest.mark.django_db
def test_waiting_reasons_name_retry_after_rate_turns_and_slots() -> None:
    now = datetime.now(UTC)
    later = now + timedelta(minutes=1)
    common = {"task_name": "t", "params": {}, "queue": "q"}
    retry = TaskRun(
        **common,
        status="scheduled",
        run_after=later,
        attempt=1,
        error_type="django_generic_tasks.exceptions.RetryAfter",
        error_message="retry at ...: HTTP 429",
    )
    rated = TaskRun(**common, status="scheduled", run_after=later, rate_key="api", rate_turn=1)
    slot = TaskRun(**common, status="ready", concurrency_key="acct", concurrency_limit=2)
    assert store.waiting_reason(retry, now, [], {}) == "Retry-After: retry at ...: HTTP 429"
    assert store.waiting_reason(rated, now, [], {}) == "rate limit of 'api': its turn"
    assert store.waiting_reason(slot, now, [], {"acct": 2}) == "a slot: 2 of 2 running for 'acct'"
    assert store.waiting_reason(slot, now, [], {"acct": 1}) == ""
    assert store.waiting_reason(slot, now, [("queue", "q", now)], {}).startswith("queue paused")


@pytest.mark.django_db
def test_the_dashboard_lists_limits_per_task_and_runs_held_back(admin_client: Client) -> None:
    backend = DatabaseBackend()
    ContractLimited.start_many([{"token": "t", "key": "k"}] * 3, backend=backend)
    TaskRun.objects.filter(pk=TaskRun.objects.order_by("pk").first().pk).update(  # type: ignore[union-attr]
        status="running"
    )
    page = admin_client.get(DASHBOARD).content.decode()
    assert 'id="dgt-limits"' in page
    assert "contract.limited" in page
    assert "10/s" in page
    assert "a concurrency slot" in page
    assert "1 of 1 running" in page
