"""Real ``tasks_worker`` processes: signals, two workers, a database that goes away."""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from django_generic_tasks.store.transient import ATTEMPTS
from tests.integration.worker_procs import TABLE, ProcDB, stop, wait_for

pytestmark = pytest.mark.slow


def test_two_worker_processes_run_each_run_exactly_once(procdb: ProcDB) -> None:
    procdb.start_runs(600, sleep=0.01)
    workers = [
        procdb.start_worker("--concurrency", "3", "--batch", "5", "--interval", "0.1")
        for _ in range(2)
    ]
    wait_for(lambda: procdb.statuses().get("succeeded", 0) == 600, 60, "all runs to succeed")
    assert [stop(w) for w in workers] == [0, 0]
    effects = procdb.side_effects()
    assert set(effects) == set(range(600))
    assert set(effects.values()) == {1}
    workers_used = procdb.query(f"SELECT COUNT(DISTINCT worker_id) FROM {TABLE}")[0][0]
    assert workers_used == 2


def test_sigterm_finishes_the_running_run_and_releases_unstarted_claims(procdb: ProcDB) -> None:
    procdb.start_runs(1, sleep=1.5, priority=10)
    procdb.start_runs(6)
    worker = procdb.start_worker("--concurrency", "1", "--batch", "5", "--grace", "30")
    wait_for(
        lambda: (
            procdb.query(
                f"SELECT COUNT(*) FROM {TABLE} WHERE priority = 10 AND status = 'running'"
            )[0][0]
            == 1
        ),
        30,
        "the long run to start",
    )
    time.sleep(0.3)
    assert stop(worker) == 0
    log = procdb.worker_log(worker)
    assert "Released" in log
    assert procdb.query(f"SELECT status FROM {TABLE} WHERE priority = 10") == [("succeeded",)]
    assert procdb.side_effects()[0] == 1
    leftovers = procdb.query(f"SELECT status, attempt, worker_id FROM {TABLE} WHERE priority = 0")
    assert all(row == ("ready", 0, None) for row in leftovers if row[0] != "succeeded")
    assert procdb.statuses().get("running", 0) == 0


def test_second_signal_exits_at_once_and_the_lease_recovers_the_run(procdb: ProcDB) -> None:
    procdb.start_runs(1, sleep=4)
    worker = procdb.start_worker("--concurrency", "1", "--lease", "1")
    wait_for(lambda: procdb.statuses().get("running", 0) == 1, 30, "the run to start")
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(3) != 0
    assert procdb.side_effects() == {}
    assert procdb.statuses() == {"running": 1}
    rescuer = procdb.start_worker("--concurrency", "1", "--lease", "1", "--interval", "0.2")
    wait_for(lambda: procdb.statuses() == {"succeeded": 1}, 30, "another worker to recover it")
    assert stop(rescuer) == 0
    assert procdb.query(f"SELECT attempt FROM {TABLE}") == [(2,)]


def test_worker_reconnects_when_the_database_drops_its_connections(procdb: ProcDB) -> None:
    if procdb.vendor == "sqlite":
        pytest.skip("PostgreSQL and MariaDB: SQLite has no server connection to lose")
    worker = procdb.start_worker("--concurrency", "2", "--interval", "0.2")
    procdb.start_runs(5)
    wait_for(lambda: procdb.statuses() == {"succeeded": 5}, 30, "the first runs")
    # PostgreSQL: main + LISTEN (+ heartbeat); MariaDB: main (+ heartbeat).
    assert procdb.terminate_connections() >= (2 if procdb.vendor == "postgresql" else 1)
    procdb.execute(f"UPDATE {TABLE} SET status = 'ready' WHERE result IN ('0', '1')")
    wait_for(lambda: procdb.statuses() == {"succeeded": 5}, 30, "runs after the drop")
    procdb.start_runs(3)
    wait_for(lambda: procdb.statuses() == {"succeeded": 8}, 30, "new runs after the drop")
    assert worker.poll() is None
    assert stop(worker) == 0
    log = procdb.worker_log(worker)
    assert "reconnecting" in log


def test_worker_survives_a_database_locked_longer_than_its_busy_timeout(procdb: ProcDB) -> None:
    if procdb.vendor != "sqlite":
        pytest.skip("SQLite only: the single-writer lock")
    worker = procdb.start_worker("--concurrency", "2", "--interval", "0.2")
    wait_for(lambda: "started" in procdb.worker_log(worker), 30, "the worker to start")
    locker = sqlite3.connect(procdb.name, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        # The worker's busy timeout is 5 s: it must report the lock, not die. A write the store
        # retries (store.transient: ATTEMPTS tries, each waiting out the busy timeout) reports
        # it only after all of them, so the wait allows for those and for a loaded machine.
        wait_for(
            lambda: "database is locked" in procdb.worker_log(worker),
            ATTEMPTS * 5 + 60,
            "a lock error",
        )
        locker.execute("COMMIT")
    finally:
        locker.close()
    assert worker.poll() is None
    procdb.start_runs(4)
    wait_for(lambda: procdb.statuses() == {"succeeded": 4}, 30, "runs after the lock")
    assert stop(worker) == 0
