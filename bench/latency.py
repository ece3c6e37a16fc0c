"""Idle latency and single-start throughput on PostgreSQL, interleaved round by round.

- ``latency``: from just before ``start()`` to the first line of the body on an idle worker
  (ours: ``tasks_worker`` defaults, LISTEN/NOTIFY), p50 and p95 of ``samples`` after warm-up,
  with random gaps between starts; beside Celery + Redis (``--pool=solo``) and, with
  ``baseline``, another checkout's ``src``.
- ``start``: ``start()`` one per transaction (autocommit) beside the limit measured in the same
  round: bare psycopg, one single-row ``INSERT`` + ``COMMIT`` each into a narrow table
  (``uuid`` key, ``jsonb`` params), and into ``start()``'s own table with its row (what the
  row, its indexes and the ``NOTIFY`` trigger cost, apart from the client).

Each round runs every system once, the order rotated from round to round, so a shared
machine's load spreads over all of them; the tables print the median and the spread (min-max)
of the rounds. Not a ``bench_*`` module (``run.py`` runs those): run it through
``bench/bench_database.py --latency-only`` / ``--start-only`` (``--help``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_database as bd


def _trees(baseline: Path | None) -> dict[str, Path]:
    return {"this tree": bd.ROOT / "src", **({"baseline": baseline} if baseline else {})}


def _rotated(items: list[Any], number: int) -> list[Any]:
    """``items`` started at round ``number``'s place: each system leads one round in turn, so
    none always runs right after another's database work."""
    shift = number % len(items)
    return items[shift:] + items[:shift]


def _db(prefix: str, name: str) -> str:
    return f"{prefix}_{name.replace(' ', '_')}"


def _ours_latency(src: Path, db: str, samples: int, tmp: str) -> dict[str, float]:
    env = bd._env("ours", db, src=src, BENCH_LATENCY=str(Path(tmp) / "latency"))
    bd._fresh_database("ours", db, src=src)
    procs = bd._worker("ours", env, 1, drain=False)
    try:
        time.sleep(3)  # start-up
        return dict(bd._run("ours", env, "latency", str(samples)))
    finally:
        bd._stop(procs)
        bd._pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _celery_latency(samples: int, tmp: str) -> dict[str, float]:
    path = Path(tempfile.mkdtemp(dir=tmp)) / "latency"
    env = bd._env("celery", "unused", BENCH_LATENCY=str(path))
    bd._run("celery", env, "purge", "0")
    procs = bd._worker("celery", env, 1, drain=False, pool="solo")
    try:
        time.sleep(3)
        return dict(bd._run("celery", env, "latency", str(samples)))
    finally:
        bd._stop(procs)


def latency(rounds: int, samples: int, baseline: Path | None, celery: bool, prefix: str) -> None:
    """Print idle latency p50/p95 per system: medians of ``rounds`` interleaved rounds."""
    systems: dict[str, Callable[[str], dict[str, float]]] = {}
    for name, src in _trees(baseline).items():
        db = _db(prefix, "lat_" + name)
        systems[name] = lambda tmp, src=src, db=db: _ours_latency(src, db, samples, tmp)
    if celery:
        problem = bd._build_venv("celery")
        if problem:
            print(f"- Celery+Redis: {problem}\n")
        else:
            systems["Celery+Redis, solo"] = lambda tmp: _celery_latency(samples, tmp)
    figures: dict[str, dict[str, list[float]]] = {name: {"p50": [], "p95": []} for name in systems}
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(rounds):
            for name, measure in _rotated(list(systems.items()), number):
                result = measure(tmp)
                for key in ("p50", "p95"):
                    figures[name][key].append(result[key])
    print(
        f"### Idle latency, start() → body, PostgreSQL ({rounds} rounds of {samples} samples, "
        f"interleaved; Python {sys.version.split()[0]})\n"
    )
    print("| system | p50 median | p50 min-max | p95 median | p95 min-max | p50 per round |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, values in figures.items():
        p50, p95 = values["p50"], values["p95"]
        print(
            f"| {name} | {statistics.median(p50):.2f} ms | {min(p50):.2f}-{max(p50):.2f} | "
            f"{statistics.median(p95):.2f} ms | {min(p95):.2f}-{max(p95):.2f} | "
            + ", ".join(f"{v:.2f}" for v in p50)
            + " |"
        )
    print()


def _bare_rate(count: int, db: str) -> float:
    import uuid

    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare_insert (id uuid PRIMARY KEY, params jsonb)"
        )
        conn.execute("TRUNCATE bench_bare_insert")
        for _ in range(20):  # warm-up, as the drivers do
            conn.execute("INSERT INTO bench_bare_insert VALUES (%s, %s)", (uuid.uuid4(), "{}"))
        began = time.perf_counter()
        for n in range(count):
            conn.execute(
                "INSERT INTO bench_bare_insert VALUES (%s, %s)", (uuid.uuid4(), f'{{"n": {n}}}')
            )
        return count / (time.perf_counter() - began)


OUR_ROW = (
    "INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status, "
    "attempt, max_attempts, timeout, run_after, created_at, key, trace_context, error_type, "
    "error_message, error_traceback) VALUES (%s, 'bench.noop', %s::jsonb, 'default', 0, "
    "'ready', 0, 1, NULL, now(), now(), NULL, NULL, '', '', '')"
)
"""The row ``start()`` writes, in the same table (its indexes, the ``NOTIFY`` trigger)."""


def _our_row_rate(count: int, db: str) -> float:
    import uuid

    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=db, autocommit=True) as conn:
        for _ in range(20):
            conn.execute(OUR_ROW, (uuid.uuid4(), "{}"))
        began = time.perf_counter()
        for n in range(count):
            conn.execute(OUR_ROW, (uuid.uuid4(), f'{{"n": {n}}}'))
        return count / (time.perf_counter() - began)


def start(rounds: int, count: int, baseline: Path | None, prefix: str) -> None:
    """Print ``start()`` one per transaction per tree, beside bare psycopg INSERT + COMMIT."""
    trees = _trees(baseline)
    dbs = {name: _db(prefix, "start_" + name) for name in trees}
    for name, src in trees.items():
        bd._fresh_database("ours", dbs[name], src=src)
    rates: dict[str, list[float]] = {
        "bare psycopg INSERT+COMMIT": [],
        "bare psycopg, start()'s row and table": [],
        **{n: [] for n in trees},
    }
    ratios: dict[str, list[float]] = {name: [] for name in trees}
    try:
        for number in range(rounds):
            round_rates: dict[str, float] = {}
            steps = [(name, None) for name in list(rates)[:2]] + list(trees.items())
            for name, src in _rotated(steps, number):
                if src is None:
                    measure = _bare_rate if name == "bare psycopg INSERT+COMMIT" else _our_row_rate
                    round_rates[name] = measure(count, dbs["this tree"])
                    continue
                env = bd._env("ours", dbs[name], src=src)
                bd._clear("ours", dbs[name], env)
                round_rates[name] = float(bd._run("ours", env, "enqueue", str(count))["rate"])
            for name, rate in round_rates.items():
                rates[name].append(rate)
                if name in ratios:
                    ratios[name].append(rate / round_rates["bare psycopg INSERT+COMMIT"])
    finally:
        for db in dbs.values():
            bd._pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(
        f"### start(), one per transaction, PostgreSQL ({rounds} rounds of {count:,}, "
        f"interleaved; Python {sys.version.split()[0]})\n"
    )
    print("| what | median | min-max | / INSERT+COMMIT (median of rounds) | per round |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in rates.items():
        ratio = statistics.median(ratios[name]) if name in ratios else None
        if ratio is None:
            bare = rates["bare psycopg INSERT+COMMIT"]
            ratio = statistics.median(v / b for v, b in zip(values, bare, strict=True))
        print(
            f"| {name} | {statistics.median(values):,.0f}/s | "
            f"{min(values):,.0f}-{max(values):,.0f} | {ratio:.2f}x | "
            + ", ".join(f"{v:,.0f}" for v in values)
            + " |"
        )
    print()


def run(args: Any) -> None:
    """Entry point from ``bench_database.py``'s arguments."""
    try:
        bd._pg("SELECT 1")
    except Exception as exc:
        print(f"latency: PostgreSQL is not reachable ({exc}); skipped.\n")
        return
    if args.start_only:
        start(args.rounds or 3, args.count or 2000, args.baseline, args.db_prefix)
    if args.latency_only:
        latency(args.rounds or 3, args.samples, args.baseline, not args.no_celery, args.db_prefix)
