"""Django ``@task`` functions on ``DatabaseTaskBackend`` run by real ``tasks_worker``
processes (SQLite file, PostgreSQL or MariaDB, after ``DATABASE_URL``), beside our own tasks."""

from __future__ import annotations

import importlib.util
import time

import pytest

from tests.integration.worker_procs import ProcDB, stop, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("django.tasks") is None, reason="needs Django >= 6.0"
    ),
]


def test_a_worker_process_runs_sync_and_async_django_tasks_beside_ours(procdb: ProcDB) -> None:
    sync_ids = procdb.enqueue_django("chaos", [{"n": n} for n in range(100)])
    async_ids = procdb.enqueue_django("chaos_async", [{"n": n} for n in range(100, 200)])
    failing = procdb.enqueue_django("fails", [{"n": 1}])
    procdb.start_runs(50)  # ours: numbers 0..49 again, so count them apart
    worker = procdb.start_worker("--concurrency", "4", "--interval", "0.1")
    wait_for(
        lambda: (
            sum(procdb.statuses().values()) == 251
            and procdb.statuses().get("succeeded", 0) + procdb.statuses().get("failed", 0) == 251
        ),
        60,
        "every run to finish",
    )
    assert stop(worker) == 0
    assert procdb.statuses() == {"succeeded": 250, "failed": 1}
    effects = procdb.side_effects()
    assert all(effects[n] == 2 for n in range(50))  # one of ours and one Django task each
    assert all(effects[n] == 1 for n in range(50, 200))
    results = procdb.django_results(sync_ids + async_ids)
    assert [r["value"] for r in results] == list(range(200))
    assert {(r["status"], r["attempts"], r["finished"]) for r in results} == {
        ("SUCCESSFUL", 1, True)
    }
    [failed] = procdb.django_results(failing)
    assert (failed["status"], failed["errors"]) == ("FAILED", ["builtins.ValueError"])


def test_a_django_task_whose_worker_is_killed_runs_again_on_another(procdb: ProcDB) -> None:
    [result_id] = procdb.enqueue_django("attempt_of", [{"n": 7, "sleep": 4}])
    worker = procdb.start_worker("--concurrency", "1", "--lease", "1")
    wait_for(lambda: procdb.statuses().get("running", 0) == 1, 30, "the run to start")
    worker.kill()
    worker.wait()
    assert procdb.side_effects() == {}
    rescuer = procdb.start_worker("--concurrency", "1", "--lease", "1", "--interval", "0.2")
    wait_for(lambda: procdb.statuses() == {"succeeded": 1}, 30, "another worker to recover it")
    assert stop(rescuer) == 0
    assert procdb.side_effects() == {7: 1}
    [result] = procdb.django_results([result_id])
    assert (result["status"], result["attempts"], result["value"]) == ("SUCCESSFUL", 2, 2)
    assert result["errors"] == ["django_generic_tasks.exceptions.WorkerLost"]


def test_a_django_task_enqueued_in_a_rolled_back_transaction_never_runs(procdb: ProcDB) -> None:
    code = (
        "from django.db import transaction\n"
        "from tests.integration.chaos_djtasks import chaos\n"
        "try:\n"
        "    with transaction.atomic():\n"
        "        chaos.enqueue(n=1)\n"
        "        raise RuntimeError('roll back')\n"
        "except RuntimeError:\n"
        "    pass\n"
        "chaos.enqueue(n=2)\n"
    )
    procdb.manage("shell", "-v0", "-c", code)
    worker = procdb.start_worker("--concurrency", "1", "--interval", "0.1")
    wait_for(lambda: procdb.statuses() == {"succeeded": 1}, 30, "the committed run")
    time.sleep(0.3)
    assert stop(worker) == 0
    assert procdb.side_effects() == {2: 1}
