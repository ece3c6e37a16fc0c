"""A cancel request reaches the running task at once on PostgreSQL (issue 22, item 5), and a run
with a pending cancel request is never claimed again: whatever gives it back (a lost worker, a
release, a postponement, a retry) ends it ``cancelled`` (item 6). Each reclaimed run is logged
once at WARNING (item 8). On SQLite, PostgreSQL or MariaDB, per ``DATABASE_URL``."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.execution import Attempt, cancellation, execute
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.polling import wait_until
from tests.testapp.tasks import AddTask, FlakyTask, calls
from tests.unit.test_cancel import LoopParams, LoopUntilCancelled
from tests.unit.test_database_worker import lost

pytestmark = pytest.mark.django_db(transaction=True)


def runs() -> store.RunStore:
    return store.for_connection(connection)


def start_worker(**options: object) -> tuple[Worker, threading.Thread]:
    defaults: dict[str, object] = {"interval": 0.02, "concurrency": 2}
    defaults.update(options)
    worker = Worker(WorkerOptions(**defaults))  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
    thread.start()
    return worker, thread


def stop(worker: Worker, thread: threading.Thread) -> None:
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()


def claim_one(worker_id: str, lease: float = 30) -> store.ClaimedRun:
    [claimed] = runs().queue.claim(worker_id, (), 5, lease, datetime.now(UTC))
    return claimed


def row(handle: tasks.TaskHandle) -> TaskRun:
    return TaskRun.objects.get(pk=handle.id)


def test_cancel_reaches_the_running_task_without_waiting_for_a_heartbeat() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; elsewhere the heartbeat delivers cancels")
    handle = LoopUntilCancelled(LoopParams(limit=60)).start(backend=DatabaseBackend())
    # A 600 s lease: the heartbeat, which reads cancel requests, first beats after 200 s.
    worker, thread = start_worker(lease=600)
    try:
        listener = wait_until(lambda: getattr(worker, "_listener", None), timeout=30)
        assert listener.ready.wait(30)
        wait_until(lambda: row(handle).status == "running", timeout=30)
        handle.cancel()
        wait_until(lambda: row(handle).status == "cancelled", timeout=30)
    finally:
        stop(worker, thread)
    assert row(handle).attempt == 1


def test_a_lost_run_whose_cancel_was_requested_ends_cancelled_not_requeued() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    claim_one("shutting-down", lease=0.001)
    handle.cancel()  # the worker stops before it reads the request
    [reclaimed] = runs().queue.reclaim_expired(lost(3), datetime.now(UTC) + timedelta(seconds=1))
    assert (reclaimed.became, reclaimed.attempt) == ("cancelled", 1)
    assert runs().queue.claim("next", (), 5, 30, datetime.now(UTC) + timedelta(seconds=2)) == []
    run = row(handle)
    assert (run.status, run.attempt, run.lease_expires_at) == ("cancelled", 1, None)
    assert run.finished_at is not None


def test_a_released_run_whose_cancel_was_requested_ends_cancelled() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    claimed = claim_one("me")
    handle.cancel()
    assert runs().queue.release("me", [claimed]) == 1
    assert runs().queue.claim("next", (), 5, 30, datetime.now(UTC)) == []
    assert row(handle).status == "cancelled"
    assert row(handle).finished_at is not None


def test_a_postponed_run_whose_cancel_was_requested_ends_cancelled() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    claimed = claim_one("me")
    handle.cancel()
    assert runs().queue.postpone("me", claimed, datetime.now(UTC)) == 1
    assert runs().queue.claim("next", (), 5, 30, datetime.now(UTC) + timedelta(seconds=1)) == []
    assert row(handle).status == "cancelled"


def test_a_retry_of_a_run_whose_cancel_was_requested_ends_it_cancelled() -> None:
    handle = FlakyTask({"token": "cancel-retry", "failures": 5}).start(backend=DatabaseBackend())
    claimed = claim_one("me")
    handle.cancel()  # after the worker's last look: the attempt fails and asks for a retry
    outcome = execute(
        Attempt(task_name=claimed.task_name, params=claimed.params, run_id=claimed.id, attempt=1)
    )
    assert outcome.will_retry
    runs().queue.finish("me", [store.Finished(claimed, outcome, datetime.now(UTC))])
    assert runs().queue.claim("next", (), 5, 30, datetime.now(UTC) + timedelta(hours=1)) == []
    run = row(handle)
    assert (run.status, run.attempt, run.error_message) == ("cancelled", 1, "failure 1")
    assert run.finished_at is not None


def test_a_claimed_run_asked_to_stop_before_it_starts_never_runs() -> None:
    handle = AddTask({"a": 41, "b": 1}).start(backend=DatabaseBackend())
    cancellation.request(handle.id)  # heard (NOTIFY or heartbeat) while it waited in the batch
    try:
        _, thread = start_worker(once=True)
        thread.join(30)
    finally:
        cancellation.clear(handle.id)
    assert row(handle).status == "cancelled"
    assert ("tests.add", 42) not in calls


def test_each_reclaimed_run_is_logged_once_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    handle = AddTask({"a": 2}).start(backend=DatabaseBackend())
    claim_one("killed-worker", lease=0.001)
    caplog.set_level(logging.WARNING, logger="django_generic_tasks")
    worker, thread = start_worker(lease=0.3)
    try:
        wait_until(lambda: row(handle).status == "succeeded", timeout=30)
    finally:
        stop(worker, thread)
    lost = [r for r in caplog.records if handle.id in r.getMessage() and "lost" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].levelno == logging.WARNING
    message = lost[0].getMessage()
    assert "tests.add" in message
    assert "attempt 1" in message
    assert "lease expired" in message
    assert (lost[0].run_id, lost[0].attempt) == (handle.id, 1)  # type: ignore[attr-defined]
