"""Async tasks on a real ``tasks_worker`` process (SQLite, PostgreSQL or MariaDB, per
``DATABASE_URL``): many awaited at once on one worker, a timeout, a cancel with progress, a
SIGKILL that loses nothing, a blocking call named in the log."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.integration.worker_procs import TABLE, ProcDB, stop, wait_for

pytestmark = pytest.mark.slow


def shell(procdb: ProcDB, code: str) -> str:
    """Run ``code`` in ``manage.py shell`` against the private database."""
    return procdb.manage("shell", "-v0", "-c", code)


def start(procdb: ProcDB, task: str, params: list[dict[str, object]]) -> None:
    shell(
        procdb,
        "from django_generic_tasks.backends import DatabaseBackend\n"
        f"from tests.integration.chaos_tasks import {task}\n"
        f"{task}.start_many({params!r}, backend=DatabaseBackend())\n",
    )


def peak_overlap(spans_file: Path) -> int:
    """The most async bodies that ran at one moment, from the spans they recorded."""
    events = []
    for line in spans_file.read_text().split("\n")[:-1]:
        _, began, ended = line.split()
        events += [(float(began), 1), (float(ended), -1)]
    peak = running = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def test_one_worker_awaits_many_async_runs_at_once_and_never_more_than_its_limit(
    procdb: ProcDB,
) -> None:
    start(procdb, "AsyncChaos", [{"n": n, "sleep": 0.5} for n in range(400)])
    worker = procdb.start_worker(
        "--async-concurrency", "100", "--concurrency", "2", "--batch", "100", "--interval", "0.1"
    )
    wait_for(lambda: procdb.statuses() == {"succeeded": 400}, 120, "all runs to succeed")
    assert stop(worker) == 0
    effects = procdb.side_effects()
    assert set(effects) == set(range(400))
    assert set(effects.values()) == {1}
    # Measured by the bodies: 100 at once (not 2, the thread count), never more.
    assert peak_overlap(Path(str(procdb.log) + ".spans")) == 100


def test_an_async_run_past_its_timeout_is_cancelled_and_the_worker_goes_on(
    procdb: ProcDB,
) -> None:
    start(procdb, "AsyncSlow", [{"n": 0, "sleep": 60}, {"n": 1, "sleep": 0}])
    worker = procdb.start_worker("--async-concurrency", "10", "--interval", "0.1")
    wait_for(
        lambda: procdb.statuses() == {"failed": 1, "succeeded": 1}, 30, "the timeout to fail it"
    )
    assert stop(worker) == 0
    [(error_type, message)] = procdb.query(
        f"SELECT error_type, error_message FROM {TABLE} WHERE status = 'failed'"
    )
    assert error_type.endswith("TaskTimeoutError")
    assert "0.5s" in message
    assert procdb.side_effects() == {1: 1}


def test_a_running_async_run_reports_progress_and_stops_when_cancelled(procdb: ProcDB) -> None:
    start(procdb, "AsyncUntilCancelled", [{"n": 0}])
    worker = procdb.start_worker("--async-concurrency", "10", "--interval", "0.1", "--lease", "1")

    def progress() -> dict[str, object] | None:
        [(value,)] = procdb.query(f"SELECT progress FROM {TABLE}")
        return json.loads(value) if isinstance(value, str) else value

    wait_for(lambda: progress() is not None, 30, "its progress to be written")
    assert progress()["message"] == "waiting for a cancel"  # type: ignore[index]
    assert procdb.statuses() == {"running": 1}
    shell(
        procdb,
        "from django_generic_tasks.backends import DatabaseBackend\n"
        "from django_generic_tasks.models import TaskRun\n"
        "DatabaseBackend().get_result(str(TaskRun.objects.get().pk)).cancel()\n",
    )
    wait_for(lambda: procdb.statuses() == {"cancelled": 1}, 30, "the run to be cancelled")
    assert stop(worker) == 0
    assert not procdb.side_effects()


def test_a_sigkilled_worker_loses_no_async_run(procdb: ProcDB) -> None:
    start(procdb, "AsyncChaos", [{"n": n, "sleep": 0.5} for n in range(400)])
    worker = procdb.start_worker(
        "--async-concurrency", "50", "--interval", "0.1", "--lease", "1", "--batch", "50"
    )
    wait_for(lambda: len(procdb.side_effects()) >= 60, 60, "some runs to finish")
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert procdb.statuses().get("running", 0) > 0  # it died holding runs
    rescuer = procdb.start_worker(
        "--async-concurrency", "50", "--interval", "0.1", "--lease", "1", "--batch", "50"
    )
    wait_for(lambda: procdb.statuses() == {"succeeded": 400}, 120, "every run to succeed")
    assert stop(rescuer) == 0
    assert set(procdb.side_effects()) == set(range(400))


def test_the_worker_log_names_an_async_task_that_blocks_its_event_loop(procdb: ProcDB) -> None:
    start(procdb, "AsyncBlocks", [{"n": 0, "sleep": 1.0}])
    worker = procdb.start_worker("--async-concurrency", "10", "--async-stall-warning", "0.3")
    wait_for(lambda: procdb.statuses() == {"succeeded": 1}, 30, "the run to succeed")
    assert stop(worker) == 0
    log = procdb.worker_log(worker)
    assert "has not turned for" in log
    assert "task tests.chaos.async_blocks" in log
    assert "time.sleep(self.params.sleep)" in log
    assert "turned again after" in log
