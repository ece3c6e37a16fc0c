"""``tasks_status`` (tables and ``--json``) and ``tasks_prune`` pruning the dashboard's rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import ErrorInfo, TaskStatus
from django_generic_tasks.execution import Outcome
from django_generic_tasks.models import RunRollup, TaskRun
from django_generic_tasks.store.rollups import epoch_minute
from tests.testapp.tasks import AddTask
from tests.unit.test_dashboard import finish_runs

pytestmark = pytest.mark.django_db


def status(*args: str) -> str:
    out = StringIO()
    call_command("tasks_status", *args, stdout=out)
    return out.getvalue()


def seed() -> list[str]:
    ids = finish_runs([TaskStatus.SUCCEEDED, TaskStatus.FAILED])
    backend = DatabaseBackend()
    AddTask({"a": 1}).start(backend=backend, queue="mail")
    AddTask({"a": 2}).start(backend=backend, queue="mail", delay=timedelta(hours=1))
    TaskRun.objects.filter(queue="mail", status="ready").update(
        run_after=datetime.now(UTC) - timedelta(minutes=3)
    )
    now = datetime.now(UTC)
    store.using().workers.beat(store.WorkerInfo("web-1:7:ab", "web-1", 7, (), 4, 12, now), 30, now)
    return ids


def test_status_prints_queues_workers_and_last_failures_as_tables() -> None:
    ids = seed()
    text = status()
    lines = text.splitlines()
    assert lines[0] == "Queues"
    assert lines[1].split() == ["queue", "waiting", "running", "scheduled", "oldest", "wait"]
    mail = next(line for line in lines if line.startswith("mail "))
    assert mail.split()[:4] == ["mail", "1", "0", "1"]
    assert mail.split()[4].endswith("m")  # about 3 minutes
    assert "Live workers" in lines
    assert any(line.startswith("web-1:7:ab") and " all " in line for line in lines)
    assert "Last failures" in lines
    assert ids[1] in text
    assert "tests.Boom: boom" in text


def test_status_json_has_the_same_figures() -> None:
    ids = seed()
    data = json.loads(status("--json"))
    [mail] = [q for q in data["queues"] if q["queue"] == "mail"]
    assert (mail["waiting"], mail["running"], mail["scheduled"]) == (1, 0, 1)
    assert 170 <= mail["oldest_wait_seconds"] <= 400
    [worker] = data["workers"]
    assert (worker["id"], worker["queues"], worker["concurrency"], worker["runs_done"]) == (
        "web-1:7:ab",
        [],
        4,
        12,
    )
    [failure] = data["last_failures"]
    assert (failure["id"], failure["status"], failure["error_type"]) == (
        ids[1],
        "failed",
        "tests.Boom",
    )


def test_status_says_so_when_there_is_nothing() -> None:
    text = status()
    assert "(no unfinished runs)" in text
    assert "(no worker has sent a heartbeat lately)" in text
    assert "(none in the last 7 days)" in text


def test_prune_deletes_old_rollups_but_keeps_recent_ones() -> None:
    now = datetime.now(UTC)
    RunRollup.objects.create(
        minute=epoch_minute(now - timedelta(days=10)), task_name="t", queue="q", outcome="succeeded"
    )
    finish_runs([TaskStatus.SUCCEEDED])
    out = StringIO()
    call_command("tasks_prune", "--older-than", "7d", stdout=out)
    assert "Deleted 1 dashboard rows" in out.getvalue()
    [kept] = RunRollup.objects.values_list("minute", flat=True)
    assert kept >= epoch_minute(now)


def long_failure() -> str:
    """A failed run, finished through the store as a worker does (rollups included)."""
    message = "the upstream answered 503 " + "and then it did not answer at all " * 6 + "THE END"
    AddTask({"a": 1}).start(backend=DatabaseBackend())
    runs = store.using()
    [run] = runs.queue.claim("test-worker", (), 1, 30, datetime.now(UTC))
    error = ErrorInfo("tests.Upstream", message, "")
    outcome = Outcome(run.id, run.task_name, 1, 1, TaskStatus.FAILED, None, error)
    runs.queue.finish("test-worker", [store.Finished(run, outcome, datetime.now(UTC))])
    return message


def test_status_cuts_long_errors_to_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    long_failure()
    monkeypatch.setenv("COLUMNS", "140")
    lines = status().splitlines()
    failure = next(line for line in lines if "tests.Upstream" in line)
    assert len(failure) <= 140
    assert failure.endswith("…")
    assert "THE END" not in failure


def test_status_wide_and_json_keep_the_whole_error(monkeypatch: pytest.MonkeyPatch) -> None:
    message = long_failure()
    monkeypatch.setenv("COLUMNS", "140")
    assert f"tests.Upstream: {message}" in status("--wide")
    [failure] = json.loads(status("--json"))["last_failures"]
    assert failure["error_message"] == message
