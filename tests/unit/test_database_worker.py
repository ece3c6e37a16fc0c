"""The worker, in-process: claims, retries, poison rows, timeouts, leases, release, prune."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import CapacityExceededError, WorkerLost
from django_generic_tasks.execution.attempts import FINAL, Decision, lost_worker_decision
from django_generic_tasks.middleware import AttemptMiddleware
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.testapp.tasks import AddTask, FlakyTask, calls

pytestmark = pytest.mark.django_db(transaction=True)


class SleepParams(BaseModel):
    seconds: float


class SleepyTask(tasks.Task[SleepParams]):
    """Sleeps; times out after 0.2 s."""

    name = "tests.db.sleepy"
    timeout = 0.2

    def run(self) -> float:
        time.sleep(self.params.seconds)
        return self.params.seconds


class TextParams(BaseModel):
    text: str


class EchoTask(tasks.Task[TextParams]):
    """Returns its text with each 0 replaced by a NUL character."""

    name = "tests.db.nul"

    def run(self) -> str:
        return self.params.text.replace("0", "\x00")


def runs() -> store.RunStore:
    """The store on the test's connection."""
    return store.for_connection(connection)


def drain(**options: object) -> int:
    """Run an in-process worker on this thread until nothing is due (stopped after 30 s)."""
    defaults: dict[str, object] = {"once": True, "interval": 0.02, "concurrency": 2}
    defaults.update(options)
    worker = Worker(WorkerOptions(**defaults))  # type: ignore[arg-type]
    watchdog = threading.Timer(30, worker.stop)
    watchdog.start()
    try:
        return worker.run(install_signals=False)
    finally:
        watchdog.cancel()


def insert_raw(task_name: str, params: object, **fields: object) -> TaskRun:
    return TaskRun.objects.create(task_name=task_name, params=params, **fields)


def lost(lost_limit: int = 3) -> Any:
    """What the worker's reaper asks about a lost run: the task's retry policy."""
    return partial(lost_worker_decision, lost_limit=lost_limit)


def test_worker_runs_every_ready_run_once_and_records_results() -> None:
    handles = AddTask.start_many([{"a": i, "b": 1} for i in range(50)], backend=DatabaseBackend())
    assert drain(batch=7) == 50
    assert sorted(v for name, v in calls if name == "tests.add") == list(range(1, 51))
    assert set(TaskRun.objects.values_list("status", flat=True)) == {"succeeded"}
    assert handles[3].refresh().result == 4


def test_retries_follow_the_task_backoff_until_success() -> None:
    handle = FlakyTask({"token": "t", "failures": 2}).start(backend=DatabaseBackend())
    drain(once=False, max_tasks=3)
    handle.refresh()
    assert (handle.status, handle.result, handle.attempts) == (TaskStatus.SUCCEEDED, "t", 3)
    run = TaskRun.objects.get(pk=handle.id)
    assert run.error_type == ""  # a success clears the last attempt's error


def test_exhausted_retries_fail_with_the_last_error() -> None:
    handle = FlakyTask({"token": "u", "failures": 9}).start(backend=DatabaseBackend())
    drain(once=False, max_tasks=4)
    handle.refresh()
    assert (handle.status, handle.attempts) == (TaskStatus.FAILED, 4)
    assert handle.error is not None
    assert handle.error.message == "failure 4"


def test_poison_rows_fail_with_a_clear_error_and_the_worker_carries_on() -> None:
    unknown = insert_raw("tests.no_such_task", {"a": 1})
    invalid = insert_raw("tests.add", {"a": "not a number"})
    extra = insert_raw("tests.add", {"a": 1, "surprise": True})
    good = AddTask({"a": 2}).start(backend=DatabaseBackend())
    assert drain() == 4
    for run in (unknown, invalid, extra):
        run.refresh_from_db()
        assert run.status == "failed"
    assert "tests.no_such_task" in unknown.error_message
    assert "UnknownTaskError" in unknown.error_type
    assert "ValidationError" in invalid.error_type
    assert "surprise" in extra.error_message
    assert good.refresh().status is TaskStatus.SUCCEEDED


def test_timed_out_run_fails_and_the_worker_stays_healthy() -> None:
    slow = SleepyTask({"seconds": 1.0}).start(backend=DatabaseBackend())
    quick = SleepyTask({"seconds": 0.0}).start(backend=DatabaseBackend())
    assert drain(concurrency=1) == 2
    slow.refresh()
    assert slow.status is TaskStatus.FAILED
    assert slow.error is not None
    assert "TaskTimeoutError" in slow.error.type
    assert quick.refresh().status is TaskStatus.SUCCEEDED


def test_higher_priority_runs_are_claimed_first() -> None:
    backend = DatabaseBackend()
    low = AddTask({"a": 1}).start(backend=backend, priority=-5)
    high = AddTask({"a": 2}).start(backend=backend, priority=9)
    mid = AddTask({"a": 3}).start(backend=backend)
    claimed = runs().queue.claim("w", (), 10, 30, datetime.now(UTC))
    assert [r.id for r in claimed] == [high.id, mid.id, low.id]


def test_a_claim_of_fewer_runs_than_are_due_takes_the_highest_priority_ones() -> None:
    backend = DatabaseBackend()
    low = AddTask({"a": 1}).start(backend=backend, priority=-5)
    high = AddTask({"a": 2}).start(backend=backend, priority=9)
    mid = AddTask({"a": 3}).start(backend=backend)
    taken = [runs().queue.claim("w", (), 1, 30, datetime.now(UTC)) for _ in range(3)]
    assert [[r.id for r in claimed] for claimed in taken] == [[high.id], [mid.id], [low.id]]


def test_worker_takes_only_its_queues() -> None:
    backend = DatabaseBackend()
    mail = AddTask({"a": 1}).start(backend=backend, queue="mail")
    other = AddTask({"a": 2}).start(backend=backend, queue="reports")
    assert drain(queues=("mail",)) == 1
    assert mail.refresh().status is TaskStatus.SUCCEEDED
    assert other.refresh().status is TaskStatus.READY


def test_expired_lease_is_reclaimed_as_a_new_attempt() -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    run = insert_raw(
        "tests.add",
        {"a": 5},
        status="running",
        attempt=1,
        worker_id="dead-worker",
        lease_expires_at=past,
    )
    [reclaimed] = runs().queue.reclaim_expired(lost(3), datetime.now(UTC))
    assert (reclaimed.became, reclaimed.attempt) == ("requeued", 1)
    assert reclaimed.task_name == "tests.add"
    assert reclaimed.expired_for >= 59
    assert drain() == 1
    run.refresh_from_db()
    assert (run.status, run.attempt, run.result) == ("succeeded", 2, 5)


def test_run_that_keeps_losing_its_worker_is_given_up() -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    run = insert_raw(
        "tests.add",
        {"a": 5},
        status="running",
        attempt=4,
        max_attempts=1,
        worker_id="dead-worker",
        lease_expires_at=past,
    )
    assert [r.became for r in runs().queue.reclaim_expired(lost(3), datetime.now(UTC))] == [
        "failed"
    ]
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_type == store.LOST_ERROR_TYPE


class LostParams(BaseModel):
    a: int


class LostPolicy:
    """Retries a lost worker an hour later on attempt 1, gives up on any later one."""

    def decide(self, task_class: Any, attempt: int, max_attempts: int, error: Any) -> Decision:
        assert isinstance(error, WorkerLost)
        assert max_attempts == task_class.max_attempts + 3
        return Decision.retry_on(datetime.now(UTC) + timedelta(hours=1)) if attempt == 1 else FINAL


class LostPolicyTask(tasks.Task[LostParams]):
    name = "tests.lost_policy"
    retry_policy = LostPolicy()

    def run(self) -> None:
        return None


def test_a_lost_worker_is_decided_by_the_tasks_retry_policy() -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    later = insert_raw(
        "tests.lost_policy", {"a": 1}, status="running", attempt=1, lease_expires_at=past
    )
    given_up = insert_raw(
        "tests.lost_policy", {"a": 2}, status="running", attempt=2, lease_expires_at=past
    )
    now = datetime.now(UTC)
    became = {r.id: r.became for r in runs().queue.reclaim_expired(lost(3), now)}
    assert became == {str(later.pk): "requeued", str(given_up.pk): "failed"}
    later.refresh_from_db()
    given_up.refresh_from_db()
    assert later.status == "scheduled"  # the policy's retry_at, not "at once"
    assert later.run_after > now + timedelta(minutes=59)
    assert (given_up.status, given_up.error_type) == ("failed", store.LOST_ERROR_TYPE)


def test_a_lost_run_of_a_task_this_process_does_not_know_is_requeued_within_the_limit() -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    insert_raw("tests.elsewhere", {}, status="running", attempt=1, lease_expires_at=past)
    insert_raw("tests.elsewhere", {}, status="running", attempt=4, lease_expires_at=past)
    reclaimed = runs().queue.reclaim_expired(lost(3), datetime.now(UTC))
    assert sorted((r.attempt, r.became) for r in reclaimed) == [(1, "requeued"), (4, "failed")]


def test_live_lease_is_not_reclaimed_and_heartbeat_extends_it() -> None:
    AddTask({"a": 1}).start(backend=DatabaseBackend())
    now = datetime.now(UTC)
    [claimed] = runs().queue.claim("me", (), 5, 30, now)
    assert runs().queue.reclaim_expired(lost(3), now + timedelta(seconds=10)) == []
    assert runs().queue.extend_leases("me", 30, now + timedelta(seconds=20)) == 1
    assert runs().queue.reclaim_expired(lost(3), now + timedelta(seconds=40)) == []
    assert TaskRun.objects.get(pk=claimed.id).status == "running"


def test_a_heartbeat_extends_only_its_own_workers_leases() -> None:
    AddTask({"a": 1}).start(backend=DatabaseBackend())
    now = datetime.now(UTC)
    [dead] = runs().queue.claim("dead-worker", (), 5, 30, now)
    assert runs().queue.extend_leases("me", 30, now + timedelta(seconds=20)) == 0
    [reclaimed] = runs().queue.reclaim_expired(lost(3), now + timedelta(seconds=40))
    assert (reclaimed.id, reclaimed.became) == (dead.id, "requeued")


def test_released_claims_go_back_to_ready_without_counting_an_attempt() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    claimed = runs().queue.claim("me", (), 5, 30, datetime.now(UTC))
    assert runs().queue.release("someone-else", claimed) == 0
    assert runs().queue.release("me", claimed) == 1
    run = TaskRun.objects.get(pk=handle.id)
    assert (run.status, run.attempt, run.worker_id) == ("ready", 0, None)


def test_only_the_worker_holding_a_run_can_put_it_back() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    [claimed] = runs().queue.claim("me", (), 5, 30, datetime.now(UTC))
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert runs().queue.postpone("someone-else", claimed, later) == 0
    run = TaskRun.objects.get(pk=handle.id)
    assert (run.status, run.attempt, run.worker_id) == ("running", 1, "me")
    assert runs().queue.postpone("me", claimed, later) == 1
    run.refresh_from_db()
    assert (run.status, run.attempt, run.worker_id) == ("scheduled", 0, None)


def test_outcome_of_a_reclaimed_run_is_not_written_by_its_old_worker() -> None:
    AddTask({"a": 1}).start(backend=DatabaseBackend())
    now = datetime.now(UTC)
    [old] = runs().queue.claim("old", (), 5, 0.001, now)
    runs().queue.reclaim_expired(lost(3), now + timedelta(seconds=1))
    [new] = runs().queue.claim("new", (), 5, 30, now + timedelta(seconds=1))
    from django_generic_tasks.execution import Attempt, execute

    runs().queue.finish(
        "old",
        [
            store.Finished(
                old,
                execute(Attempt(task_name=old.task_name, params=old.params, run_id=old.id)),
                now,
            )
        ],
    )
    run = TaskRun.objects.get(pk=new.id)
    assert (run.status, run.worker_id, run.attempt) == ("running", "new", 2)


def test_result_that_cannot_be_stored_fails_the_run_clearly() -> None:
    # PostgreSQL's jsonb refuses NUL characters; SQLite stores them.
    handle = EchoTask({"text": "a0b"}).start(backend=DatabaseBackend())
    after = AddTask({"a": 1}).start(backend=DatabaseBackend())
    drain()
    handle.refresh()
    if connection.vendor == "postgresql":
        assert handle.status is TaskStatus.FAILED
        assert handle.error is not None
        assert "could not be stored" in handle.error.message
    else:
        assert (handle.status, handle.result) == (TaskStatus.SUCCEEDED, "a\x00b")
    assert after.refresh().status is TaskStatus.SUCCEEDED


def test_worker_command_runs_due_runs_with_once() -> None:
    AddTask.start_many([{"a": i} for i in range(5)], backend=DatabaseBackend())
    call_command("tasks_worker", "--once", "--concurrency", "2", "--batch", "3", verbosity=0)
    assert TaskRun.objects.filter(status="succeeded").count() == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--interval", "0"], "--interval must be positive"),
        (["--max-tasks", "0"], "--max-tasks must be at least 1"),
        (["--grace", "-1"], "--grace must not be negative"),
    ],
)
def test_worker_command_rejects_bad_options(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("tasks_worker", *args, verbosity=0)


def test_prune_deletes_only_old_finished_runs() -> None:
    old = datetime.now(UTC) - timedelta(days=8)
    old_ok = insert_raw("tests.add", {"a": 1}, status="succeeded", finished_at=old)
    old_failed = insert_raw("tests.add", {"a": 1}, status="failed", finished_at=old)
    recent = insert_raw("tests.add", {"a": 1}, status="succeeded", finished_at=datetime.now(UTC))
    waiting = insert_raw("tests.add", {"a": 1}, status="ready")
    out = StringIO()
    call_command("tasks_prune", "--older-than", "7d", "--status", "succeeded", stdout=out)
    assert "Deleted 1 task runs" in out.getvalue()
    remaining = set(TaskRun.objects.values_list("pk", flat=True))
    assert remaining == {old_failed.pk, recent.pk, waiting.pk}
    assert old_ok.pk not in remaining
    call_command("tasks_prune", "--older-than", "7d", "--batch", "1", stdout=out)
    assert set(TaskRun.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "seven days"], "not an age"),
        (["--older-than", "7d", "--status", "running"], "only finished statuses"),
        (["--older-than", "7d", "--batch", "0"], "--batch must be at least 1"),
    ],
)
def test_prune_rejects_bad_input_and_deletes_nothing(args: list[str], message: str) -> None:
    insert_raw(
        "tests.add", {"a": 1}, status="succeeded", finished_at=datetime(2000, 1, 1, tzinfo=UTC)
    )
    with pytest.raises(CommandError, match=message):
        call_command("tasks_prune", *args)
    assert TaskRun.objects.count() == 1


def test_prune_dry_run_counts_without_deleting() -> None:
    insert_raw(
        "tests.add", {"a": 1}, status="succeeded", finished_at=datetime(2000, 1, 1, tzinfo=UTC)
    )
    out = StringIO()
    call_command("tasks_prune", "--older-than", "1h", "--dry-run", stdout=out)
    assert "Would delete 1" in out.getvalue()
    assert TaskRun.objects.count() == 1


def test_run_ids_sort_by_creation_time() -> None:
    handles = [AddTask({"a": i}).start(backend=DatabaseBackend()) for i in range(5)]
    assert sorted(handles, key=lambda h: uuid.UUID(h.id)) == handles


def test_worker_command_with_max_tasks_and_concurrency_runs_exactly_n() -> None:
    AddTask.start_many([{"a": i} for i in range(10)], backend=DatabaseBackend())
    call_command("tasks_worker", "--max-tasks", "3", "--concurrency", "4", verbosity=0)
    assert TaskRun.objects.filter(status="succeeded").count() == 3
    assert TaskRun.objects.filter(status="ready", attempt=0).count() == 7


class LongParams(BaseModel):
    seconds: float
    token: str


class OutlivesItsLeaseTask(tasks.Task[LongParams]):
    """Sleeps longer than the worker's lease."""

    name = "tests.db.outlives_lease"

    def run(self) -> str:
        calls.append((self.name, self.params.token))
        time.sleep(self.params.seconds)
        return self.params.token


def test_run_longer_than_its_lease_completes_once_because_heartbeats_extend_it() -> None:
    # A lease of 0.3 s, a body of 1.2 s: without heartbeats the worker's own reaper would
    # requeue the run (after 0.5 s) and run it a second time.
    handle = OutlivesItsLeaseTask({"seconds": 1.2, "token": "once"}).start(
        backend=DatabaseBackend()
    )
    assert drain(lease=0.3, concurrency=2) == 1
    run = TaskRun.objects.get(pk=handle.id)
    assert (run.status, run.attempt, run.result) == ("succeeded", 1, "once")
    assert [c for c in calls if c[0] == "tests.db.outlives_lease"] == [
        ("tests.db.outlives_lease", "once")
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"batch": 0}, "batch must be at least 1"),
        ({"lease": 0}, "lease must be positive"),
        ({"grace": -1}, "grace must not be negative"),
        ({"queues": ("",)}, "queues must be non-empty names"),
    ],
)
def test_worker_options_are_validated_when_built(options: dict[str, object], message: str) -> None:
    from django_generic_tasks.worker import WorkerOptionError

    with pytest.raises(WorkerOptionError, match=message):
        WorkerOptions(**options)  # type: ignore[arg-type]


def test_the_heartbeat_row_counts_finished_runs_within_about_a_second() -> None:
    from django_generic_tasks.models import WorkerHeartbeat

    worker = Worker(WorkerOptions(interval=0.05, lease=60))  # beats only every 20 s
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
    thread.start()
    try:
        AddTask.start_many([{"a": i, "b": 1} for i in range(3)], backend=DatabaseBackend())
        deadline = time.monotonic() + 10
        done = 0
        while time.monotonic() < deadline and done < 3:
            time.sleep(0.1)
            row = WorkerHeartbeat.objects.filter(worker_id=worker.id).first()
            done = row.runs_done if row is not None else 0
        assert done == 3, (
            list(TaskRun.objects.values_list("status", flat=True)),
            list(WorkerHeartbeat.objects.values_list("worker_id", "runs_done")),
            worker.id,
            worker.processed,
        )
        assert time.monotonic() < deadline - 5  # well before the next beat
    finally:
        worker.stop()
        thread.join(30)


def test_outcomes_whose_write_met_a_lost_connection_are_written_once_it_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import OperationalError

    queue_class = type(runs().queue)
    real_finish = queue_class.finish
    failures = [OperationalError("server closed the connection unexpectedly")]

    def finish(self: Any, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(queue_class, "finish", finish)
    handles = AddTask.start_many([{"a": i, "b": 1} for i in range(5)], backend=DatabaseBackend())
    assert drain() == 5
    assert failures == []  # the first write did fail
    assert [h.refresh().status for h in handles] == [TaskStatus.SUCCEEDED] * 5
    assert sorted(v for name, v in calls if name == "tests.add") == [1, 2, 3, 4, 5]


class RefusedTask(tasks.Task[LostParams]):
    name = "tests.db.refused"

    def run(self) -> None:
        raise AssertionError("a refused attempt never runs")


class RefuseMiddleware(AttemptMiddleware):
    """Refuses every attempt of ``RefusedTask`` for now (as an over-capacity process does)."""

    def __call__(self, task: Any, attempt: Any) -> Any:
        if attempt.task_name == RefusedTask.name:
            raise CapacityExceededError("busy")
        return self.next(task, attempt)


def test_runs_put_back_while_the_connection_was_lost_are_written_once_it_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import OperationalError

    queue_class = type(runs().queue)
    real_postpone = queue_class.postpone
    failures = [OperationalError("server closed the connection unexpectedly")]

    def postpone(self: Any, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_postpone(self, *args, **kwargs)

    monkeypatch.setattr(queue_class, "postpone", postpone)
    handle = RefusedTask(LostParams(a=1)).start(backend=DatabaseBackend())
    with override_settings(TASKS_MIDDLEWARE=[f"{__name__}.RefuseMiddleware"]):
        drain(concurrency=1)
    assert failures == []  # the first write did fail
    run = TaskRun.objects.get(pk=handle.id)
    assert (run.status, run.attempt, run.worker_id) == (TaskStatus.SCHEDULED, 0, None)


def test_an_outcome_the_database_refuses_fails_its_run_and_the_batch_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import DataError

    # Whatever the database: a value it refuses (PostgreSQL's NUL above) fails the whole
    # batch's write, then that run's alone.
    queue_class = type(runs().queue)
    real_finish = queue_class.finish

    def finish(self: Any, worker_id: str, items: Any, *args: Any, **kwargs: Any) -> Any:
        if any(item.outcome.result == "unstorable" for item in items):
            raise DataError("value refused by the database")
        return real_finish(self, worker_id, items, *args, **kwargs)

    monkeypatch.setattr(queue_class, "finish", finish)
    refused = EchoTask({"text": "unstorable"}).start(backend=DatabaseBackend())
    others = AddTask.start_many([{"a": i} for i in range(3)], backend=DatabaseBackend())
    drain(batch=10)
    refused.refresh()
    assert refused.status is TaskStatus.FAILED
    assert refused.error is not None
    assert "could not be stored" in refused.error.message
    assert [h.refresh().status for h in others] == [TaskStatus.SUCCEEDED] * 3


release_blocked = threading.Event()
blocked_started = threading.Event()


class BlockedTask(tasks.Task[LostParams]):
    name = "tests.db.blocked"

    def run(self) -> int:
        blocked_started.set()
        release_blocked.wait(30)
        return self.params.a


def test_a_stopping_worker_hands_back_the_runs_it_claimed_but_never_started() -> None:
    release_blocked.clear()
    blocked_started.clear()
    handles = BlockedTask.start_many([{"a": i} for i in range(3)], backend=DatabaseBackend())
    # A short grace: the blocked run outlasts it, so the shutdown goes on while that run still
    # holds the only thread (and the run claimed to follow it can never start meanwhile).
    worker = Worker(WorkerOptions(concurrency=1, interval=0.02, grace=0.2))

    def run_worker() -> None:
        from django.db import connections

        try:
            worker.run(install_signals=False)
        finally:
            connections.close_all()  # this thread's: the test database is dropped after

    thread = threading.Thread(target=run_worker)
    thread.start()
    try:
        # One run blocks the only thread (its body has started: a claimed run still waiting
        # for the thread would be handed back too); the worker claims a second one to follow.
        assert blocked_started.wait(30), "the first run never started"
        deadline = time.monotonic() + 30
        while TaskRun.objects.filter(status="running").count() < 2:
            assert time.monotonic() < deadline, "the worker never claimed a second run"
            time.sleep(0.02)
        worker.stop()
        thread.join(30)
    finally:
        release_blocked.set()
        thread.join(30)
    statuses = [TaskRun.objects.get(pk=h.id) for h in handles]
    # The blocked run is left to its lease (the grace ran out); the other two wait again.
    assert sorted(run.status for run in statuses) == ["ready", "ready", "running"]
    for run in statuses:
        if run.status == "ready":  # handed back: no attempt used, no worker
            assert (run.attempt, run.worker_id) == (0, None)
