"""Cancel of running runs held by two real ``tasks_worker`` processes (SQLite, PostgreSQL or
MariaDB, per ``DATABASE_URL``)."""

from __future__ import annotations

import pytest

from tests.integration.worker_procs import TABLE, ProcDB, stop, wait_for

pytestmark = pytest.mark.slow


def test_handle_cancel_stops_running_runs_on_two_worker_processes(procdb: ProcDB) -> None:
    procdb.manage(
        "shell",
        "-v0",
        "-c",
        "from django_generic_tasks.backends import DatabaseBackend\n"
        "from tests.integration.chaos_tasks import LoopUntilCancelled\n"
        "for n, queue in enumerate(('a', 'b')):\n"
        "    LoopUntilCancelled({'n': n}).start(queue=queue, backend=DatabaseBackend())\n",
    )
    workers = [  # one queue each, so each worker holds one of the two runs
        procdb.start_worker(
            "--queue", queue, "--concurrency", "1", "--interval", "0.1", "--lease", "1"
        )
        for queue in ("a", "b")
    ]
    wait_for(lambda: procdb.statuses().get("running", 0) == 2, 60, "both runs to start")
    held_by = procdb.query(f"SELECT COUNT(DISTINCT worker_id) FROM {TABLE}")[0][0]
    assert held_by == 2
    procdb.manage(
        "shell",
        "-v0",
        "-c",
        "from django_generic_tasks.backends import DatabaseBackend\n"
        "from django_generic_tasks.models import TaskRun\n"
        "backend = DatabaseBackend()\n"
        "for pk in TaskRun.objects.values_list('pk', flat=True):\n"
        "    backend.get_result(str(pk)).cancel()\n",
    )
    wait_for(lambda: procdb.statuses().get("cancelled", 0) == 2, 60, "both runs to cancel")
    assert [stop(w) for w in workers] == [0, 0]
    assert procdb.query(f"SELECT MAX(attempt) FROM {TABLE}")[0][0] == 1
    assert not procdb.side_effects()
