"""``handle.wait()`` on PostgreSQL: how soon a waiter has the result after the run finished.

One ``tasks_worker`` process (DatabaseBackend, PostgreSQL); this process starts a run and calls
``wait()``, then compares the moment ``wait()`` returned with the run's ``finished_at`` (set by
the worker as it writes the outcome: the wake-up includes that commit, the ``NOTIFY``, the
listener and the waiter's read). Side by side, alternating in rounds:
- ours: ``LISTEN/NOTIFY`` (the default on PostgreSQL);
- baseline: the same backend with finish notices off, so ``wait()`` polls with its backoff
  (what it does on SQLite and MariaDB).
Also the whole ``start()`` -> result time and the queries each ``wait()`` made.
Target (shared/performance.md): wake-up p50 <= 5 ms, no polling.
Run: ``.venv/bin/python bench/bench_wait.py [--quick]`` (needs PostgreSQL).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANAGE = ROOT / "tests" / "manage.py"


def _pg(dsn: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


class Database:
    """A fresh PostgreSQL database with our migrations."""

    def __init__(self) -> None:
        self.name = f"dgt_bench_wait_{uuid.uuid4().hex[:8]}"
        self.admin = "host=127.0.0.1 user=postgres dbname=postgres"
        _pg(self.admin, f'CREATE DATABASE "{self.name}"')
        self.url = f"postgres://postgres@127.0.0.1:5432/{self.name}"
        self.env = {**os.environ, "DATABASE_URL": self.url, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, str(MANAGE), "migrate", "-v0"], env=self.env, check=True)

    def drop(self) -> None:
        _pg(self.admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(backend: Any, count: int) -> tuple[list[float], list[float], list[int]]:
    """Wake-ups (ms after ``finished_at``), start -> result times (ms) and queries per wait."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from tests.testapp.tasks import AddTask

    from django_generic_tasks.models import TaskRun

    wakes, round_trips, queries = [], [], []
    for i in range(count):
        began = time.monotonic()
        handle = AddTask({"a": i, "b": 1}).start(backend=backend)
        with CaptureQueriesContext(connection) as captured:
            result = handle.wait(timeout=30)
        returned_at, done = time.time(), time.monotonic()
        assert result == i + 1, result
        finished_at = TaskRun.objects.values_list("finished_at", flat=True).get(pk=handle.id)
        wakes.append((returned_at - finished_at.timestamp()) * 1000)
        round_trips.append((done - began) * 1000)
        queries.append(len(captured))
        time.sleep(0.005)  # let the worker go idle again, as between real requests
    return wakes, round_trips, queries


def main(quick: bool = False) -> None:
    """Measure and print the table."""
    rounds, per_round = (3, 10) if quick else (10, 50)
    db = Database()
    worker = None
    try:
        os.environ["DATABASE_URL"] = db.url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.test.utils import setup_test_environment

        from django_generic_tasks.backends import DatabaseBackend

        setup_test_environment()  # lets CaptureQueriesContext count without DEBUG output

        class PollingBackend(DatabaseBackend):
            """The database backend with finish notices off: ``wait()`` polls."""

            def finish_notices(self) -> None:
                return None

        worker = subprocess.Popen(
            [sys.executable, str(MANAGE), "tasks_worker", "-v0"],
            env=db.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        systems = [("ours: LISTEN/NOTIFY", DatabaseBackend()), ("polling", PollingBackend())]
        measure(systems[0][1], 5)  # warm-up: imports, connections, the listener
        results: dict[str, tuple[list[float], list[float], list[int]]] = {
            label: ([], [], []) for label, _ in systems
        }
        for _ in range(rounds):
            for label, backend in systems:
                for into, values in zip(results[label], measure(backend, per_round), strict=True):
                    into.extend(values)  # type: ignore[arg-type]
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        from django.db import connections

        connections.close_all()
        from django_generic_tasks.store.finish_notices import stop_listeners

        stop_listeners()
        db.drop()
    base = statistics.median(results["polling"][0])
    print(f"handle.wait() on PostgreSQL, {rounds} rounds x {per_round} runs per system\n")
    print(
        "| system | runs | wake-up p50 | wake-up p95 | vs polling (p50) | start -> result p50 "
        "| p95 | queries per wait |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, (wakes, trips, queries) in results.items():
        p50 = statistics.median(wakes)
        print(
            f"| {label} | {len(wakes)} | {p50:.2f} ms | {_pct(wakes, 0.95):.2f} ms | "
            f"{p50 / base:.2f}x | {statistics.median(trips):.2f} ms | {_pct(trips, 0.95):.2f} ms "
            f"| {statistics.mean(queries):.1f} |"
        )
    print("\nTarget: wake-up p50 <= 5 ms, no polling.\n")


if __name__ == "__main__":
    main("--quick" in sys.argv)
