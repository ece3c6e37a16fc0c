"""What a mutation audit found unpinned in the run store and the slot store: each test names
the guard it pins (a stale attempt, another worker's claim, a retry's budget, a cancel's
finish time, a slot taken over twice, an empty batch's rollups).

Runs on every database the suite is pointed at (SQLite, PostgreSQL, MariaDB): each dialect
writes its own finish statement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.execution import Outcome
from django_generic_tasks.models import RunRollup, TaskRun
from django_generic_tasks.store import slots
from django_generic_tasks.store.rollups import Rollup, epoch_minute
from django_generic_tasks.store.rows import Reclaimed
from tests.testapp.tasks import AddTask
from tests.unit.test_database_worker import lost

pytestmark = pytest.mark.django_db(transaction=True)


def runs() -> store.RunStore:
    return store.for_connection(connection)


def claim_one(worker_id: str, now: datetime) -> store.ClaimedRun:
    [run] = runs().queue.claim(worker_id, (), 1, 30, now)
    return run


def succeeded(run: store.ClaimedRun, at: datetime) -> store.Finished:
    outcome = Outcome(run.id, run.task_name, run.attempt, run.max_attempts, TaskStatus.SUCCEEDED)
    return store.Finished(run, outcome, at, 0.01)


def lose_lease(run: store.ClaimedRun, lost_limit: int, now: datetime) -> Reclaimed:
    """Let ``run``'s lease run out and the reaper take it back."""
    TaskRun.objects.filter(pk=run.id).update(lease_expires_at=now - timedelta(seconds=1))
    [reclaimed] = runs().queue.reclaim_expired(lost(lost_limit), now)
    return reclaimed


def test_finishing_a_stale_attempt_leaves_the_same_workers_new_attempt_running() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    now = datetime.now(UTC)
    stale = claim_one("w", now)
    assert lose_lease(stale, 3, now).became == "requeued"
    current = claim_one("w", now)
    assert (current.id, current.attempt) == (stale.id, 2)

    runs().queue.finish("w", [succeeded(stale, now)])

    row = TaskRun.objects.get(pk=handle.id)
    assert (row.status, row.attempt, row.finished_at) == ("running", 2, None)
    runs().queue.finish("w", [succeeded(current, now)])
    assert TaskRun.objects.get(pk=handle.id).status == "succeeded"


def test_an_old_worker_cannot_finish_a_run_retried_with_a_fresh_budget_and_claimed_anew() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())  # max_attempts = 1
    now = datetime.now(UTC)
    old = claim_one("old", now)
    assert lose_lease(old, 0, now).became == "failed"
    retried = runs().operations.retry(TaskRun.objects.filter(pk=handle.id), now, fresh_budget=True)
    assert retried == (1, [], 0)
    new = claim_one("new", now)
    assert (new.id, new.attempt) == (old.id, old.attempt)  # only the worker tells them apart

    runs().queue.finish("old", [succeeded(old, now)])

    row = TaskRun.objects.get(pk=handle.id)
    assert (row.status, row.worker_id, row.finished_at) == ("running", "new", None)


def test_a_plain_retry_of_a_run_discarded_at_its_first_attempt_keeps_its_budget() -> None:
    run = TaskRun.objects.create(
        task_name="tests.add", status="discarded", attempt=1, max_attempts=3
    )
    assert runs().operations.retry(TaskRun.objects.filter(pk=run.pk), datetime.now(UTC)) == (
        1,
        [],
        0,
    )
    run.refresh_from_db()
    assert (run.status, run.attempt, run.max_attempts) == ("ready", 1, 3)


def test_a_cancelled_waiting_run_has_its_finish_time() -> None:
    backend = DatabaseBackend()
    ready = AddTask({"a": 1}).start(backend=backend)
    scheduled = AddTask({"a": 2}).start(backend=backend, delay=timedelta(hours=1))
    now = datetime.now(UTC).replace(microsecond=0)
    assert runs().operations.cancel(TaskRun.objects.all(), now) == 2
    for handle in (ready, scheduled):
        row = TaskRun.objects.get(pk=handle.id)
        assert (row.status, row.finished_at) == ("cancelled", now)


def test_a_slot_taken_over_once_cannot_be_taken_over_again_at_the_same_instant() -> None:
    slot_store = slots.using()
    claimed_at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert slot_store.claim("nightly", claimed_at, "run-1", claimed_at, fired=False, lease=60)
    later = claimed_at + timedelta(seconds=61)
    [abandoned] = slot_store.unfired(later)
    assert slot_store.take_over(abandoned, later, 60, "scheduler-b")
    assert not slot_store.take_over(abandoned, later, 60, "scheduler-c")
    assert slot_store.objects.get().owner == "scheduler-b"


def test_finishing_an_empty_batch_still_writes_its_rollups() -> None:
    minute = epoch_minute(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    row = Rollup(minute, "tests.add", "default", "succeeded", runs=4, seconds=0.5)
    row.histogram[3] = 4
    runs().queue.finish("w", [], [row])
    stored = RunRollup.objects.get()
    assert (stored.minute, stored.task_name, stored.outcome, stored.runs) == (
        minute,
        "tests.add",
        "succeeded",
        4,
    )
