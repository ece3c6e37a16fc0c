"""Django ``@task`` functions on ``DatabaseTaskBackend`` + ``tasks_worker`` vs django-tasks-db +
``db_worker``, on PostgreSQL, SQLite and MariaDB (each engine that is reachable).

The same no-op function (``bench/djtbench/tasks.py``) through the alias ``ours`` or ``dtdb``:
- drain of N runs (10,000 and 50,000) by one worker process: N enqueued in one transaction,
  then the worker started and left to empty the queue (ours: ``tasks_worker --once``, its
  defaults; django-tasks-db: ``db_worker --batch --interval 0.1``); the rate is N over the
  span from the first run's start to the last run's finish, as each records them (worker
  start-up excluded); on PostgreSQL a thread runs ``VACUUM ANALYZE`` every 10 s meanwhile,
  standing in for autovacuum, which this machine's server has off;
- ``enqueue()``, one per transaction (autocommit), runs/s;
- idle latency, from just before ``enqueue()`` to the first line of the body (its return value
  is ``time.time()``), p50 and p95 over random gaps, the worker idle, both polling every 0.1 s
  (ours also wakes on LISTEN/NOTIFY on PostgreSQL).
Variants alternate round by round; the table has medians, (min-max) and ratios.
Run: ``.venv/bin/python bench/bench_django_task_backend.py [--quick] [--engine sqlite ...]
[--counts 10000,50000] [--rounds 3] [--big-rounds 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENGINES = ("postgresql", "sqlite", "mysql")
DB_NAME = "dgt_djtasks_bench"
SYSTEMS = ("dtdb", "ours")


# -- the parent: one child process per engine, then the table ------------------------------


def _child_env(engine: str, database: str) -> dict[str, str]:
    paths = [str(HERE), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "BENCH_ENGINE": engine,
        "BENCH_DB": database,
        "DJANGO_SETTINGS_MODULE": "djtbench.settings",
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
    }


def _create_database(engine: str) -> str | None:
    """A fresh database for ``engine``; its name (``None``: the engine is not reachable)."""
    if engine == "sqlite":
        return str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    try:
        if engine == "postgresql":
            import psycopg

            with psycopg.connect(
                "host=127.0.0.1 user=postgres dbname=postgres", autocommit=True
            ) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        else:
            import MySQLdb

            conn = MySQLdb.connect(host="127.0.0.1", user="root", autocommit=True)
            try:
                conn.cursor().execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
                conn.cursor().execute(f"CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4")
            finally:
                conn.close()
    except Exception as exc:  # the engine is down or its driver missing: skip it
        print(f"{engine}: skipped ({exc})", file=sys.stderr)
        return None
    return DB_NAME


def _run_engine(engine: str, options: argparse.Namespace) -> dict[str, Any] | None:
    database = _create_database(engine)
    if database is None:
        return None
    args = [sys.executable, __file__, "--child", engine, "--rounds", str(options.rounds)]
    args += ["--big-rounds", str(options.big_rounds), "--counts", options.counts]
    args += ["--enqueues", str(options.enqueues), "--samples", str(options.samples)]
    result = subprocess.run(
        args, env=_child_env(engine, database), capture_output=True, text=True, check=False
    )
    if result.returncode:
        print(f"{engine}: failed\n{result.stderr[-3000:]}", file=sys.stderr)
        return None
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _cell(values: list[float], digits: int = 0) -> str:
    low, mid, high = (
        f"{v:,.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )
    return f"{mid} ({low}-{high})"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The Markdown table: one row per engine and measure."""
    lines = [
        "| engine | measure | django-tasks-db | DatabaseTaskBackend | ratio of medians |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for engine, measures in results.items():
        for key, values in measures.items():
            theirs, ours = values["dtdb"], values["ours"]
            latency = key.startswith("latency")
            digits = 1 if latency else 0
            ratio = statistics.median(theirs) / statistics.median(ours)
            if not latency:
                ratio = 1 / ratio
            unit = "ms" if latency else "runs/s"
            lines.append(
                f"| {engine} | {key} ({unit}) | {_cell(theirs, digits)} | "
                f"{_cell(ours, digits)} | {ratio:.1f}x |"
            )
    return "\n".join(lines) + "\n"


def main(quick: bool = False, argv: list[str] | None = None) -> None:
    """Measure every reachable engine and print the table (``quick``: a smoke run)."""
    import importlib.util

    if importlib.util.find_spec("django_tasks_db") is None:
        print("bench_django_task_backend: django-tasks-db is not installed; skipped.\n")
        return
    options = _parser().parse_args(argv if argv is not None else [])
    if quick:
        options.counts, options.rounds, options.big_rounds = "300", 1, 1
        options.enqueues, options.samples = 100, 10
        options.engine = options.engine or ["sqlite"]
    results = {}
    for engine in options.engine or ENGINES:
        found = _run_engine(engine, options)
        if found is not None:
            results[engine] = found
    print("### Django @task: DatabaseTaskBackend vs django-tasks-db\n")
    print(
        f"No-op functions; drains: one worker process; medians of {options.rounds} rounds "
        f"({options.big_rounds} for 50,000), (min-max); ratios read how many times faster "
        "DatabaseTaskBackend is.\n"
    )
    print(table(results))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--engine", action="append", choices=ENGINES)
    parser.add_argument("--counts", default="10000,50000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds of counts > 10,000")
    parser.add_argument("--enqueues", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    return parser


# -- the child: one engine, Django set up on its database ----------------------------------


def _setup() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _worker(system: str, drain: bool) -> subprocess.Popen[bytes]:
    manage = [sys.executable, str(HERE / "djtbench" / "manage.py")]
    if system == "ours":
        command = [*manage, "tasks_worker", "-v0", *(["--once"] if drain else [])]
        command += [] if drain else ["--interval", "0.1"]  # idle polls as often as the peer's
    else:
        command = [*manage, "db_worker", "--backend", "dtdb", "-v0", "--interval", "0.1"]
        command += ["--no-startup-delay", "--no-reload", *(["--batch"] if drain else [])]
    return subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL)


def _rows(system: str) -> Any:
    if system == "ours":
        from django_generic_tasks.models import TaskRun

        return TaskRun.objects.all()
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.all()


VACUUM_EVERY = 10.0
"""Seconds between two ``VACUUM ANALYZE`` of the queue tables during a drain, on PostgreSQL."""


@contextmanager
def _vacuuming() -> Iterator[None]:
    """On PostgreSQL, ``VACUUM ANALYZE`` both queue tables every ``VACUUM_EVERY`` s meanwhile:
    the machine's server runs with ``autovacuum = off``, and without it a queue's dead index
    entries pile up during a drain (django-tasks-db's claim slowed to ~8 runs/s at 50,000)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    import psycopg

    stop = threading.Event()
    dsn = f"host=127.0.0.1 user=postgres dbname={connection.settings_dict['NAME']}"

    def vacuum() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.wait(VACUUM_EVERY):
                for table in ("django_generic_tasks_taskrun", "django_tasks_database_dbtaskresult"):
                    conn.execute(f"VACUUM ANALYZE {table}")  # type: ignore[arg-type]

    thread = threading.Thread(target=vacuum, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _drain(system: str, count: int) -> float:
    from django.db import transaction
    from django.db.models import Max, Min

    from djtbench.tasks import noop

    task = noop.using(backend=system)
    with transaction.atomic():
        for n in range(count):
            task.enqueue(n)
    worker = _worker(system, drain=True)
    with _vacuuming():
        if worker.wait(3600):
            raise RuntimeError(f"{system}'s worker failed")
    rows = _rows(system)
    done = rows.filter(status="succeeded" if system == "ours" else "SUCCESSFUL")
    if done.count() != count:
        raise RuntimeError(f"{system} finished {done.count()} of {count} runs")
    span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    rows.delete()
    return count / (span["last"] - span["first"]).total_seconds()


def _enqueue(system: str, count: int) -> float:
    from djtbench.tasks import noop

    task = noop.using(backend=system)
    for n in range(20):  # warm-up
        task.enqueue(n)
    started = time.perf_counter()
    for n in range(count):
        task.enqueue(n)
    rate = count / (time.perf_counter() - started)
    _rows(system).delete()
    return rate


def _latency(system: str, samples: int) -> tuple[float, float]:
    from djtbench.tasks import stamp

    task = stamp.using(backend=system)
    worker = _worker(system, drain=False)
    rng = random.Random(7)
    found: list[float] = []
    try:
        time.sleep(2)  # the worker starts and goes idle
        for n in range(samples + 5):
            time.sleep(rng.uniform(0.05, 0.15))
            began = time.time()
            result = task.enqueue(n)
            deadline = time.monotonic() + 30
            while not result.is_finished and time.monotonic() < deadline:
                time.sleep(0.002)
                result.refresh()
            if n >= 5:  # after warm-up
                found.append((result.return_value - began) * 1000)
    finally:
        worker.terminate()
        worker.wait(30)
    _rows(system).delete()
    found.sort()
    return statistics.median(found), found[int(len(found) * 0.95) - 1]


def child(options: argparse.Namespace) -> None:
    """Measure one engine; print one JSON line of figures per measure and system."""
    _setup()
    counts = [int(c) for c in options.counts.split(",")]
    results: dict[str, dict[str, list[float]]] = {}

    def add(key: str, system: str, value: float) -> None:
        results.setdefault(key, {s: [] for s in SYSTEMS})[system].append(value)

    for system in SYSTEMS:  # warm-up: imports, the file or the tables' first pages
        _drain(system, 200)
    for round_number in range(options.rounds):
        order = SYSTEMS if round_number % 2 == 0 else SYSTEMS[::-1]
        for count in counts:
            if count > 10_000 and round_number >= options.big_rounds:
                continue
            for system in order:
                add(f"drain {count:,}", system, _drain(system, count))
        for system in order:
            add("enqueue, 1 per transaction", system, _enqueue(system, options.enqueues))
        for system in order:
            p50, p95 = _latency(system, options.samples)
            add("latency p50", system, p50)
            add("latency p95", system, p95)
    print(json.dumps(results))


if __name__ == "__main__":
    parsed = _parser().parse_args()
    if parsed.child:
        child(parsed)
    else:
        main(parsed.quick, [a for a in sys.argv[1:] if a != "--quick"])
