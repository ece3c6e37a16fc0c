"""The store's observability: rollups kept by finish(), queue depths, heartbeats, pruning.

Runs on every database the suite is pointed at (SQLite, PostgreSQL, MariaDB).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import ErrorInfo, TaskStatus
from django_generic_tasks.execution import Outcome
from django_generic_tasks.execution.attempts import Decision
from django_generic_tasks.models import QueueSample, RunRollup, TaskRun, WorkerHeartbeat
from django_generic_tasks.store.rollups import epoch_minute, percentile
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db(transaction=True)

MINUTE = datetime(2026, 11, 29, 12, 0, 30, tzinfo=UTC)
BOOM = ErrorInfo("builtins.ValueError", "boom", "")


def runs() -> store.RunStore:
    return store.for_connection(connection)


def claim(count: int, queue: str = "default") -> list[store.ClaimedRun]:
    for a in range(count):
        AddTask({"a": a}).start(backend=DatabaseBackend(), queue=queue)
    return runs().queue.claim("w1", (queue,), count, 30, datetime.now(UTC))


def outcome(run: store.ClaimedRun, status: TaskStatus) -> Outcome:
    """``SCHEDULED``: a failed attempt that the policy retries in 5 minutes."""
    error = None if status is TaskStatus.SUCCEEDED else BOOM
    if status is TaskStatus.SCHEDULED:
        retry = Decision.retry_on(MINUTE + timedelta(minutes=5))
        return Outcome(
            run.id,
            run.task_name,
            run.attempt,
            run.max_attempts,
            TaskStatus.FAILED,
            None,
            error,
            retry,
        )
    return Outcome(run.id, run.task_name, run.attempt, run.max_attempts, status, None, error)


def test_finish_adds_counts_by_outcome_per_minute_and_adds_up_across_batches() -> None:
    a, b, c, d, e = claim(5)
    later = MINUTE + timedelta(minutes=1)
    runs().queue.finish(
        "w1",
        [
            store.Finished(a, outcome(a, TaskStatus.SUCCEEDED), MINUTE, 0.002),
            store.Finished(b, outcome(b, TaskStatus.FAILED), MINUTE, 0.2),
            store.Finished(c, outcome(c, TaskStatus.SCHEDULED), MINUTE, 2.0),
        ],
    )
    runs().queue.finish("w1", [store.Finished(d, outcome(d, TaskStatus.SUCCEEDED), MINUTE, 0.003)])
    runs().queue.finish("w1", [store.Finished(e, outcome(e, TaskStatus.DISCARDED), later, 0.5)])
    rows = {(r.minute, r.task_name, r.queue, r.outcome): r for r in RunRollup.objects.all()}
    m = epoch_minute(MINUTE)
    assert {k: r.runs for k, r in rows.items()} == {
        (m, "tests.add", "default", "succeeded"): 2,
        (m, "tests.add", "default", "failed"): 1,
        (m, "tests.add", "default", "retried"): 1,
        (m + 1, "tests.add", "default", "discarded"): 1,
    }
    ok = rows[(m, "tests.add", "default", "succeeded")]
    assert ok.seconds == pytest.approx(0.005)
    assert (ok.d1, ok.d0) == (2, 0)  # both in (1 ms, 5 ms]
    assert rows[(m, "tests.add", "default", "failed")].last_run_id == b.id
    assert rows[(m, "tests.add", "default", "retried")].d7 == 1  # (1 s, 5 s]


def test_throughput_buckets_outcomes_and_includes_empty_buckets() -> None:
    a, b, c = claim(3)
    runs().queue.finish("w1", [store.Finished(a, outcome(a, TaskStatus.SUCCEEDED), MINUTE, 0.01)])
    two_later = MINUTE + timedelta(minutes=2)
    runs().queue.finish(
        "w1",
        [
            store.Finished(b, outcome(b, TaskStatus.SUCCEEDED), two_later, 0.01),
            store.Finished(c, outcome(c, TaskStatus.FAILED), two_later, 0.01),
        ],
    )
    series = runs().observations.throughput(two_later, 3, 1)
    m = epoch_minute(MINUTE)
    assert series == [
        (m, {"succeeded": 1}),
        (m + 1, {}),
        (m + 2, {"succeeded": 1, "failed": 1}),
    ]
    [(start, counts)] = [s for s in runs().observations.throughput(two_later, 60, 60) if s[1]]
    assert start <= m
    assert counts == {"succeeded": 2, "failed": 1}


def test_task_figures_count_final_runs_failures_retries_and_durations() -> None:
    a, b, c, d = claim(4)
    runs().queue.finish(
        "w1",
        [
            store.Finished(a, outcome(a, TaskStatus.SUCCEEDED), MINUTE, 0.002),
            store.Finished(b, outcome(b, TaskStatus.SUCCEEDED), MINUTE, 0.002),
            store.Finished(c, outcome(c, TaskStatus.FAILED), MINUTE, 0.3),
            store.Finished(d, outcome(d, TaskStatus.SCHEDULED), MINUTE, 0.3),
        ],
    )
    [task] = runs().observations.task_figures(MINUTE, 60)
    assert (task.task_name, task.runs, task.failures, task.retries) == ("tests.add", 3, 1, 1)
    assert task.failure_rate == pytest.approx(1 / 3)
    assert percentile(task.histogram, 0.5) == 0.005
    assert percentile(task.histogram, 0.95) == 0.5
    [failure] = runs().observations.last_failures(MINUTE, 60)
    assert str(failure.pk) == c.id


def test_last_failures_include_discarded_runs_beside_failed_ones() -> None:
    failed, discarded, succeeded = claim(3)
    runs().queue.finish(
        "w1",
        [
            store.Finished(failed, outcome(failed, TaskStatus.FAILED), MINUTE, 0.1),
            store.Finished(
                discarded, outcome(discarded, TaskStatus.DISCARDED), MINUTE + timedelta(minutes=1)
            ),
            store.Finished(succeeded, outcome(succeeded, TaskStatus.SUCCEEDED), MINUTE, 0.1),
        ],
    )
    shown = runs().observations.last_failures(MINUTE + timedelta(minutes=1), 60)
    assert {str(run.pk) for run in shown} == {failed.id, discarded.id}


def test_queue_depths_split_due_scheduled_and_running_with_the_oldest_wait() -> None:
    backend = DatabaseBackend()
    AddTask({"a": 1}).start(backend=backend, queue="mail")
    AddTask({"a": 2}).start(backend=backend, queue="mail")
    AddTask({"a": 3}).start(backend=backend, queue="mail", delay=timedelta(hours=1))
    AddTask({"a": 4}).start(backend=backend, queue="reports")
    now = datetime.now(UTC)
    TaskRun.objects.filter(queue="mail", status="ready").update(
        run_after=now - timedelta(seconds=90)
    )
    runs().queue.claim("w1", ("reports",), 1, 30, now)
    depths = {q.queue: q for q in runs().observations.queue_depths(now)}
    mail, reports = depths["mail"], depths["reports"]
    assert (mail.waiting, mail.scheduled, mail.running) == (2, 1, 0)
    assert 89 <= mail.oldest_wait <= 120
    assert (reports.waiting, reports.scheduled, reports.running) == (0, 0, 1)
    gauge = runs().observations.queue_depth_by_status(now)
    assert gauge[("mail", "waiting")] == 2
    assert gauge[("reports", "running")] == 1
    assert set(runs().observations.oldest_waiting_age(now)) == {"mail"}
    assert runs().observations.sample_queues(now) == 2
    assert (
        runs().observations.sample_queues(now) == 2
    )  # a second sample of the minute replaces the first
    assert QueueSample.objects.get(queue="mail").waiting == 2


def test_heartbeats_show_live_workers_until_they_expire_or_are_forgotten() -> None:
    now = datetime.now(UTC)
    info = store.WorkerInfo("host:1:abc", "host", 1, ("default", "mail"), 4, 0, now)
    runs().workers.beat(info, 30, now)
    runs().workers.beat(store.WorkerInfo("host:1:abc", "host", 1, ("default",), 4, 7, now), 30, now)
    [live] = runs().workers.live(now)
    assert (live.worker_id, live.queues, live.runs_done) == ("host:1:abc", "default", 7)
    assert runs().workers.live(now + timedelta(seconds=31)) == []
    runs().workers.forget("host:1:abc")
    assert not WorkerHeartbeat.objects.exists()


def test_pruning_deletes_old_rollups_samples_and_dead_heartbeats() -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=8)
    [a] = claim(1)
    runs().queue.finish("w1", [store.Finished(a, outcome(a, TaskStatus.SUCCEEDED), old, 0.01)])
    [b] = claim(1)
    runs().queue.finish("w1", [store.Finished(b, outcome(b, TaskStatus.SUCCEEDED), now, 0.01)])
    QueueSample.objects.create(minute=epoch_minute(old), queue="default")
    runs().workers.beat(store.WorkerInfo("gone", "h", 1, (), 1, 0, old), 30, old)
    runs().workers.beat(store.WorkerInfo("alive", "h", 2, (), 1, 0, now), 30, now)
    assert runs().observations.prune(now - timedelta(days=7)) == 2
    assert runs().workers.prune(now - timedelta(days=7)) == 1
    assert list(RunRollup.objects.values_list("minute", flat=True)) == [epoch_minute(now)]
    assert list(WorkerHeartbeat.objects.values_list("pk", flat=True)) == ["alive"]


def test_a_worker_counts_its_runs_in_rollups_and_beats_until_it_stops() -> None:
    import threading

    from django_generic_tasks.worker import Worker, WorkerOptions
    from tests.polling import wait_until

    for a in range(5):
        AddTask({"a": a}).start(backend=DatabaseBackend())
    worker = Worker(WorkerOptions(interval=0.02, concurrency=2))

    def work() -> None:
        try:
            worker.run(install_signals=False)
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=work)
    thread.start()
    try:
        beat = wait_until(lambda: WorkerHeartbeat.objects.filter(pk=worker.id).first(), 30)
        assert (beat.concurrency, beat.queues) == (2, "")
        # Written about once a second while the worker runs, not only when it stops.
        wait_until(lambda: sum(RunRollup.objects.values_list("runs", flat=True)) == 5, 30)
    finally:
        worker.stop()
        thread.join(30)
    assert sum(RunRollup.objects.filter(outcome="succeeded").values_list("runs", flat=True)) == 5
    assert not WorkerHeartbeat.objects.filter(pk=worker.id).exists()


def test_gauge_callbacks_read_the_default_database() -> None:
    AddTask({"a": 1}).start(backend=DatabaseBackend(), queue="mail")
    TaskRun.objects.update(run_after=datetime.now(UTC) - timedelta(seconds=30))
    assert store.queue_depth() == {
        ("mail", "waiting"): 1,
        ("mail", "scheduled"): 0,
        ("mail", "running"): 0,
    }
    [(queue, age)] = store.oldest_waiting_age().items()
    assert queue == "mail"
    assert age >= 29


def test_outcomes_are_still_written_before_the_rollup_table_is_migrated() -> None:
    from django.db.migrations.executor import MigrationExecutor

    from tests.unit.test_database_migration import migrate_to_latest

    [run] = claim(1)
    MigrationExecutor(connection).migrate([("django_generic_tasks", "0003_store_indexes")])
    store.base._READY.clear()
    try:
        runs().queue.finish(
            "w1", [store.Finished(run, outcome(run, TaskStatus.SUCCEEDED), MINUTE, 0.01)]
        )
        # Only the columns of 0003: later migrations add others.
        assert TaskRun.objects.values_list("status", flat=True).get(pk=run.id) == "succeeded"
    finally:
        migrate_to_latest()
