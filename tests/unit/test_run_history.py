"""A run keeps its attempts (issue 22, item 9): after a retry succeeds, the earlier attempts'
errors, workers and times are still there, bounded per run, on the handle, the admin page and
``GET runs/<id>``. On SQLite, PostgreSQL or MariaDB, per ``DATABASE_URL``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.core.status import ErrorInfo, TaskStatus
from django_generic_tasks.execution import Outcome
from django_generic_tasks.execution.attempts import Decision
from django_generic_tasks.models import TaskRun
from django_generic_tasks.store.rows import HISTORY_LIMIT
from tests.testapp.tasks import AddTask, FlakyTask
from tests.unit.test_database_worker import drain, lost

pytestmark = pytest.mark.django_db(transaction=True)


def runs() -> store.RunStore:
    return store.for_connection(connection)


def retried_flaky_run() -> str:
    handle = FlakyTask({"token": "history", "failures": 2}).start(backend=DatabaseBackend())
    drain(once=False, max_tasks=3)
    return handle.id


def test_a_retried_runs_earlier_attempts_survive_its_success() -> None:
    run_id = retried_flaky_run()
    handle = DatabaseBackend().get_result(run_id)
    assert (handle.status, handle.attempts) == (TaskStatus.SUCCEEDED, 3)
    assert handle.error is None  # the row's last error is the last attempt's: none
    first, second, last = handle.history
    assert [r.attempt for r in handle.history] == [1, 2, 3]
    assert [r.outcome for r in handle.history] == ["retried", "retried", "succeeded"]
    assert (first.error_message, second.error_message) == ("failure 1", "failure 2")
    assert first.error_type.endswith("Transient")
    assert first.worker
    assert first.worker == last.worker
    assert first.started_at is not None
    assert first.ended_at is not None
    assert first.started_at <= first.ended_at <= second.ended_at


def test_history_keeps_only_the_last_attempts() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    now = datetime.now(UTC)
    attempts = HISTORY_LIMIT + 3
    for attempt in range(1, attempts + 1):
        [claimed] = runs().queue.claim("me", (), 1, 30, now)
        assert claimed.attempt == attempt
        outcome = Outcome(
            claimed.id,
            claimed.task_name,
            attempt,
            99,
            TaskStatus.FAILED,
            error=ErrorInfo("ValueError", f"error {attempt}"),
            decision=Decision(retry=True),  # again at once
        )
        runs().queue.finish("me", [store.Finished(claimed, outcome, now)])
    stored = TaskRun.objects.get(pk=handle.id).history
    assert [entry["attempt"] for entry in stored] == list(range(4, attempts + 1))
    assert stored[-1]["error_message"] == f"error {attempts}"


def test_a_lost_attempt_joins_the_history() -> None:
    handle = AddTask({"a": 2}).start(backend=DatabaseBackend())
    now = datetime.now(UTC)
    runs().queue.claim("killed", (), 1, 0.001, now)
    runs().queue.reclaim_expired(lost(3), now + timedelta(milliseconds=2))
    drain()
    history = DatabaseBackend().get_result(handle.id).history
    assert [(r.attempt, r.outcome) for r in history] == [(1, "lost"), (2, "succeeded")]
    assert history[0].worker == "killed"


def test_the_run_admin_page_lists_each_attempt(admin_client: Client) -> None:
    run_id = retried_flaky_run()
    page = admin_client.get(f"/admin/django_generic_tasks/taskrun/{run_id}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="dgt-attempts"' in html
    assert "failure 1" in html
    assert "failure 2" in html
    assert html.count("retried") == 2


def test_get_run_shows_the_history_without_messages_unless_exposed(
    client: Client, settings: Any
) -> None:
    run_id = retried_flaky_run()
    with override_backend(DatabaseBackend()):
        body = client.get(f"/api/tasks/runs/{run_id}").json()
        settings.TASKS_API_EXPOSE_ERROR_MESSAGES = True
        exposed = client.get(f"/api/tasks/runs/{run_id}").json()
    assert [a["outcome"] for a in body["history"]] == ["retried", "retried", "succeeded"]
    assert body["history"][0]["error_type"].endswith("Transient")
    assert "failure 1" not in str(body)
    assert body["history"][0]["worker"] is None
    assert exposed["history"][0]["error_message"] == "failure 1"
    assert exposed["history"][0]["worker"]
