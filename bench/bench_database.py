"""DatabaseBackend + ``tasks_worker`` vs django-tasks-db (``db_worker``) vs Celery + Redis.

All on the machine's PostgreSQL / Redis, no-op tasks, one run, side by side:
- enqueue/s, one start per transaction (autocommit); bulk enqueue/s (one transaction);
- drain of N runs with 1 and 2 worker processes: from the first run taken to the last one
  finished, as the systems record it (worker start-up excluded). Celery: prefork with
  ``--concurrency`` = the number of processes, no result backend;
- idle latency, from just before ``start()`` to the first line of the body, p50/p95 after
  warm-up, random gaps between starts;
- ours only: claim latency with 0 vs 1M finished rows;
- on MariaDB (127.0.0.1:3306), ours vs django-tasks-db: bulk enqueue and drain, 1 worker.
Peers are installed in throwaway virtualenvs under ``.venv-bench/`` (git-ignored), built with
``sys.executable -m venv`` on first use. Medians of ``rounds`` rounds.
Run: ``.venv/bin/python bench/bench_database.py [--quick]``; ours alone, a change's cost on the
drain: ``bench/bench_database.py --drain-only [--count 50000] [--rounds 5] [--baseline SRC]
[--mariadb]`` (SRC: another checkout's ``src``, e.g. ``git worktree add /tmp/base main``);
idle latency and single starts: ``--latency-only`` / ``--start-only`` (``latency.py``);
``--help`` lists every option.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SITE = BENCH / "dbbench"
VENVS = ROOT / ".venv-bench"
PEERS = {
    "dtdb": ["django-tasks-db>=0.13,<1", "psycopg[binary]>=3.1,<4"],
    "celery": ["celery[redis]>=5.4,<6"],
}
TABLES = {
    "ours": ("django_generic_tasks_taskrun", "succeeded"),
    "dtdb": ("django_tasks_database_dbtaskresult", "SUCCESSFUL"),
}
LABELS = {"ours": "django-generic-tasks", "dtdb": "django-tasks-db", "celery": "Celery+Redis"}


def _python(system: str) -> str:
    return sys.executable if system == "ours" else str(VENVS / system / "bin" / "python")


def _build_venv(system: str) -> str | None:
    """Create the peer's virtualenv if needed; return an error message, or None when ready."""
    target = VENVS / system
    stamp = target / ".bench-ready"
    if stamp.exists():
        return None
    shutil.rmtree(target, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, timeout=120)
        subprocess.run(
            [str(target / "bin" / "pip"), "install", "-q", *PEERS[system]],
            check=True,
            timeout=600,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"virtualenv could not be built ({type(exc).__name__})"
    stamp.touch()
    return None


def _env(
    system: str, database: str, engine: str = "postgresql", src: Path | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    ours = str(src or ROOT / "src")
    env.update(
        BENCH_SYSTEM=system,
        BENCH_DB=database,
        BENCH_ENGINE=engine,
        DJANGO_SETTINGS_MODULE="dbbench.settings",
        PYTHONPATH=os.pathsep.join([str(BENCH), ours if system == "ours" else str(SITE)]),
        **extra,
    )
    return env


def _pg(sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname=database, autocommit=True
    ) as conn:
        cursor = conn.execute(sql)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _my(sql: str, database: str = "") -> list[tuple[Any, ...]]:
    import MySQLdb

    conn = MySQLdb.connect(host="127.0.0.1", user="root", database=database, autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        conn.close()


def _sql(engine: str, sql: str, database: str) -> list[tuple[Any, ...]]:
    return _my(sql, database) if engine == "mysql" else _pg(sql, database)


def _run(system: str, env: dict[str, str], *args: str, timeout: float = 900) -> Any:
    script = SITE / ("celery_app.py" if system == "celery" else "driver.py")
    result = subprocess.run(
        [_python(system), str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"{system} {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _worker(
    system: str, env: dict[str, str], processes: int, drain: bool, pool: str = "prefork"
) -> list[Any]:
    """Start worker processes (``drain``: exit when the queue is empty, where supported;
    ``pool``: Celery's)."""
    if system == "ours":
        command = [_python(system), str(SITE / "manage.py"), "tasks_worker", "-v0"]
        command += ["--once"] if drain else []
    elif system == "dtdb":
        command = [_python(system), str(SITE / "manage.py"), "db_worker", "-v0"]
        command += ["--interval", "0.1", "--no-startup-delay"] + (["--batch"] if drain else [])
    else:
        command = [str(VENVS / "celery" / "bin" / "celery"), "-A", "celery_app", "worker"]
        command += [f"--pool={pool}", f"--concurrency={processes}", "-l", "warning"]
        command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        processes = 1
    return [
        subprocess.Popen(
            command,
            cwd=SITE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(processes)
    ]


def _stop(procs: list[Any]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _drain_rate(system: str, env: dict[str, str], count: int, processes: int, db: str) -> float:
    out = Path(env.get("BENCH_OUT", ""))
    engine = env.get("BENCH_ENGINE", "postgresql")
    procs = _worker(system, env, processes, drain=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if system == "celery":
                stats = [f.read_text().split() for f in out.iterdir()]
                if sum(int(s[2]) for s in stats if len(s) == 3) >= count:
                    first = min(float(s[0]) for s in stats)
                    last = max(float(s[1]) for s in stats)
                    return count / (last - first)
                continue
            table, done = TABLES[system]
            span = (
                "TIMESTAMPDIFF(MICROSECOND, min(started_at), max(finished_at)) / 1e6"
                if engine == "mysql"
                else "EXTRACT(EPOCH FROM max(finished_at) - min(started_at))"
            )
            [(finished, seconds)] = _sql(
                engine,
                f"SELECT SUM(CASE WHEN status = '{done}' THEN 1 ELSE 0 END), {span} FROM {table}",
                db,
            )
            if finished and finished >= count:
                return count / float(seconds)
        raise RuntimeError(f"{system} did not drain {count} runs in time")
    finally:
        _stop(procs)


def _fresh_database(
    system: str, name: str, engine: str = "postgresql", src: Path | None = None
) -> None:
    if engine == "mysql":
        _my(f"DROP DATABASE IF EXISTS {name}")
        _my(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    else:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg(f'CREATE DATABASE "{name}"')
    env = _env(system, name, engine, src)
    subprocess.run(
        [_python(system), str(SITE / "manage.py"), "migrate", "-v0"],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )


def _clear(system: str, db: str, env: dict[str, str]) -> None:
    """Start from an empty queue (leftovers would be drained or delay the latency runs)."""
    if system in TABLES:
        _sql(env.get("BENCH_ENGINE", "postgresql"), f"TRUNCATE {TABLES[system][0]}", db)
    else:
        _run(system, env, "purge", "0")


def _measure(system: str, sizes: dict[str, int], rounds: int) -> dict[str, Any]:
    """Every figure for one system: lists of per-round values."""
    db = f"dgt_bench_{system}"
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(system, db, BENCH_LATENCY=str(Path(tmp) / "latency"))
        if system != "celery":
            _fresh_database(system, db)
        for _ in range(rounds):
            _clear(system, db, env)
            figures.setdefault("enqueue", []).append(
                _run(system, env, "enqueue", str(sizes["enqueue"]))["rate"]
            )
            for processes in (1, 2):
                _clear(system, db, env)
                out = Path(tempfile.mkdtemp(dir=tmp))
                drain_env = {**env, "BENCH_OUT": str(out)}
                rate = _run(system, drain_env, "bulk", str(sizes["drain"]))["rate"]
                if processes == 1:
                    figures.setdefault("bulk", []).append(rate)
                figures.setdefault(f"drain{processes}", []).append(
                    _drain_rate(system, drain_env, sizes["drain"], processes, db)
                )
        _clear(system, db, env)
        procs = _worker(system, env, 1, drain=False)
        try:
            time.sleep(3)  # start-up
            lat = _run(system, env, "latency", str(sizes["latency"]))
        finally:
            _stop(procs)
        figures["p50"], figures["p95"] = [lat["p50"]], [lat["p95"]]
        if system == "ours":
            claim = _run(system, env, "claim", str(sizes["claim_rows"]), timeout=1800)
            figures["claim_empty"], figures["claim_full"] = [claim["empty"]], [claim["full"]]
        if system != "celery":
            _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return {key: statistics.median(values) for key, values in figures.items()}


def _measure_mariadb(system: str, sizes: dict[str, int], rounds: int) -> dict[str, Any]:
    """Bulk enqueue and 1-worker drain on MariaDB: lists of per-round values, as medians."""
    db = f"dgt_bench_{system}_mariadb"
    figures: dict[str, list[float]] = {}
    env = _env(system, db, "mysql")
    _fresh_database(system, db, "mysql")
    try:
        for _ in range(rounds):
            _clear(system, db, env)
            figures.setdefault("bulk", []).append(
                _run(system, env, "bulk", str(sizes["drain"]))["rate"]
            )
            figures.setdefault("drain1", []).append(_drain_rate(system, env, sizes["drain"], 1, db))
    finally:
        _my(f"DROP DATABASE IF EXISTS {db}")
    return {key: statistics.median(values) for key, values in figures.items()}


def _mariadb_problem(system: str) -> str | None:
    """Why ``system`` cannot run on MariaDB here, or ``None``."""
    try:
        _my("SELECT 1")
    except Exception as exc:
        return f"MariaDB not reachable or MySQLdb missing ({type(exc).__name__})"
    if system == "ours":
        return None
    check = subprocess.run(
        [_python(system), "-c", "import MySQLdb"], check=False, capture_output=True
    )
    if check.returncode:
        install = subprocess.run(
            [str(VENVS / system / "bin" / "pip"), "install", "-q", "mysqlclient>=2.2.1,<3"],
            check=False,
            capture_output=True,
            timeout=600,
        )
        if install.returncode:
            return "mysqlclient did not build in its virtualenv"
    return None


def _mariadb_table(results: dict[str, Any], sizes: dict[str, int], rounds: int) -> None:
    systems = [s for s in ("ours", "dtdb") if s in results]
    if not systems:
        return
    print(f"### DatabaseBackend vs django-tasks-db on MariaDB (median of {rounds})\n")
    ratio = " | ours / django-tasks-db" if len(systems) == 2 else ""
    print("| measure | " + " | ".join(LABELS[s] for s in systems) + ratio + " |")
    print("| --- " * (len(systems) + 1 + (1 if ratio else 0)) + "|")
    for key, label in (
        ("bulk", f"bulk enqueue ({sizes['drain']:,} in one transaction)"),
        ("drain1", f"drain {sizes['drain']:,}, 1 worker process"),
    ):
        cells = [_fmt(results[s].get(key), "rate") for s in systems]
        if ratio:
            cells.append(f"{results['ours'][key] / results['dtdb'][key]:.1f}x")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f} ms" if unit == "ms" else f"{value:,.0f}/s"


def main(quick: bool = False) -> None:
    """Print the side-by-side table (quick: small counts, ours only)."""
    sizes = (
        {"enqueue": 200, "drain": 1000, "latency": 10, "claim_rows": 20_000}
        if quick
        else {"enqueue": 2000, "drain": 10_000, "latency": 60, "claim_rows": 1_000_000}
    )
    rounds = 1 if quick else 3
    systems = ["ours"] if quick else ["ours", "dtdb", "celery"]
    results: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    try:
        _pg("SELECT 1")
    except Exception as exc:
        print(f"bench_database: PostgreSQL is not reachable ({exc}); skipped.\n")
        return
    for system in systems:
        problem = None if system == "ours" else _build_venv(system)
        if problem is None:
            try:
                results[system] = _measure(system, sizes, rounds)
            except Exception as exc:
                problem = f"failed: {str(exc).strip().splitlines()[0][:160]}"
        if problem:
            notes.append(f"{LABELS[system]}: {problem}")
    if quick:
        notes.append("django-tasks-db and Celery+Redis: not run in quick mode")
    _table(results, sizes, rounds, notes)
    mariadb: dict[str, dict[str, Any]] = {}
    for system in [s for s in systems if s in ("ours", "dtdb") and s in results]:
        problem = _mariadb_problem(system)
        if problem is None:
            try:
                mariadb[system] = _measure_mariadb(system, sizes, rounds)
            except Exception as exc:
                problem = f"failed: {str(exc).strip().splitlines()[0][:160]}"
        if problem:
            print(f"- MariaDB, {LABELS[system]}: {problem}\n")
    _mariadb_table(mariadb, sizes, rounds)


def _table(results: dict[str, Any], sizes: dict[str, int], rounds: int, notes: list[str]) -> None:
    peers = [s for s in ("dtdb", "celery") if s in results]
    print(f"### DatabaseBackend vs peers (PostgreSQL, no-op runs, median of {rounds})\n")
    header = "| measure | " + " | ".join(LABELS[s] for s in ["ours", *peers])
    header += "".join(f" | ours / {LABELS[p]}" for p in peers) + " |"
    print(header)
    print("| --- " * (1 + len(peers) * 2 + 1) + "|")
    rows = [
        ("enqueue", f"enqueue, 1 per transaction ({sizes['enqueue']:,})", "rate", True),
        ("bulk", f"bulk enqueue ({sizes['drain']:,} in one transaction)", "rate", True),
        ("drain1", f"drain {sizes['drain']:,}, 1 worker process", "rate", True),
        ("drain2", f"drain {sizes['drain']:,}, 2 worker processes", "rate", True),
        ("p50", "idle latency p50 (start → body)", "ms", False),
        ("p95", "idle latency p95", "ms", False),
    ]
    ours = results.get("ours", {})
    for key, label, unit, higher_better in rows:
        cells = [_fmt(results[s].get(key), unit) for s in ["ours", *peers]]
        for peer in peers:
            a, b = ours.get(key), results[peer].get(key)
            ratio = "—" if not a or not b else f"{(a / b if higher_better else b / a):.1f}x"
            cells.append(ratio)
        print(f"| {label} | " + " | ".join(cells) + " |")
    if "claim_empty" in ours:
        empty, full = ours["claim_empty"], ours["claim_full"]
        print(
            f"\nClaim latency (ours, one due run): {empty:.2f} ms on an empty table, "
            f"{full:.2f} ms with {sizes['claim_rows']:,} finished rows ({full / empty:.2f}x)."
        )
    print(
        "\nRatios: > 1x means ours is better (higher rate, or lower latency). Ours: "
        "`tasks_worker` defaults (4 threads, batch ≤ 100, LISTEN/NOTIFY); django-tasks-db: "
        "`db_worker --interval 0.1`, persistent connection; Celery: prefork, "
        "`--concurrency` = processes, no result backend."
    )
    for note in notes:
        print(f"\n- {note}")
    print()


def drain_only(
    count: int, rounds: int, baseline: Path | None, engine: str, prefix: str = "dgt_bench"
) -> None:
    """Ours only: 1-worker drains of ``count`` runs, this tree vs ``baseline`` (another
    checkout's ``src``, e.g. before a change), interleaved round by round (databases
    ``<prefix>_drain_*``)."""
    trees = {"this tree": ROOT / "src", **({"baseline": baseline} if baseline else {})}
    rates: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, src in trees.items():
            db = f"{prefix}_drain_" + name.replace(" ", "_")
            _fresh_database("ours", db, engine, src)
            env = _env("ours", db, engine, src)
            try:
                _run("ours", env, "bulk", str(count))
                rates[name].append(_drain_rate("ours", env, count, 1, db))
            finally:
                if engine == "mysql":
                    _my(f"DROP DATABASE IF EXISTS {db}")
                else:
                    _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(f"### Drain, 1 worker process, {count:,} no-op runs, {engine} ({rounds} rounds)\n")
    print("| tree | median | min | max | rounds |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in rates.items():
        print(
            f"| {name} | {_fmt(statistics.median(values), 'rate')} | "
            f"{_fmt(min(values), 'rate')} | {_fmt(max(values), 'rate')} | "
            + ", ".join(f"{v:,.0f}" for v in values)
            + " |"
        )
    if baseline:
        ratio = statistics.median(rates["this tree"]) / statistics.median(rates["baseline"])
        print(f"\nthis tree / baseline: {ratio:.3f}x")


def finish_cost(batches: int, size: int = 100) -> None:
    """What the rollups add to the worker's batched finish, measured in-process on
    PostgreSQL: ``batches`` batches of ``size`` no-op outcomes, alternately with and without
    the rollup upsert, timed around ``finish()`` only (less noisy than whole drains on a
    shared machine), and the grouping of each batch into rollup rows. Prints medians per run.
    Run: ``bench/bench_database.py --finish-cost 100``."""
    db = "dgt_bench_finish"
    _fresh_database("ours", db)
    os.environ.update(_env("ours", db))
    sys.path[:0] = [str(BENCH), str(ROOT / "src")]
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.db import connection

    from dbbench.tasks import Noop  # type: ignore[import-not-found]
    from django_generic_tasks import store
    from django_generic_tasks.core.status import TaskStatus
    from django_generic_tasks.execution import Outcome
    from django_generic_tasks.store.rollups import Rollup, merge, rollups

    runs = store.for_connection(connection)
    timings: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    grouping: list[float] = []
    buffer: list[Rollup] = []
    try:
        for number in range(batches * 2):
            with_rollups = number % 2 == 0
            Noop.start_many([{"n": n} for n in range(size)])
            claimed = runs.queue.claim("bench", (), size, 30, datetime.now(UTC))
            now = datetime.now(UTC)
            items = [
                store.Finished(
                    run,
                    Outcome(
                        run.id, run.task_name, run.attempt, run.max_attempts, TaskStatus.SUCCEEDED
                    ),
                    now,
                    0.0001,
                )
                for run in claimed
            ]
            runs.observations.rollups_ready = (lambda: True) if with_rollups else (lambda: False)  # type: ignore[method-assign]
            began = time.perf_counter()
            buffer = merge(buffer, rollups(items))  # what the worker does with every batch
            grouping.append((time.perf_counter() - began) / size * 1e6)
            wall, cpu = time.perf_counter(), time.process_time()
            runs.queue.finish("bench", items)
            timings[with_rollups].append(
                (
                    (time.perf_counter() - wall) / size * 1e6,
                    (time.process_time() - cpu) / size * 1e6,
                )
            )
    finally:
        connection.close()
        _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(
        f"### finish() per run, batches of {size}, PostgreSQL "
        f"({batches} batches each, interleaved)\n"
    )
    print("| finish | wall per run (median) | client CPU per run (median) |")
    print("| --- | --- | --- |")
    for flag, label in ((False, "without rollups"), (True, "with rollups")):
        wall = statistics.median(t[0] for t in timings[flag])
        cpu = statistics.median(t[1] for t in timings[flag])
        print(f"| {label} | {wall:.2f} µs | {cpu:.2f} µs |")
    extra = statistics.median(t[0] for t in timings[True]) - statistics.median(
        t[0] for t in timings[False]
    )
    print(
        f"\nWritten with every batch, the rollups add {extra:.2f} µs per run to finish(). "
        f"The worker groups every batch ({statistics.median(grouping):.2f} µs per run, "
        "client CPU) but writes the rollups with one batch a second only, so per run it pays "
        "the grouping plus that extra divided by the batches it finishes in a second."
    )


def _arguments() -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        description="DatabaseBackend + tasks_worker vs django-tasks-db vs Celery + Redis "
        "(PostgreSQL; MariaDB for ours vs django-tasks-db). Without a mode: the whole table."
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small counts, ours only")
    mode.add_argument("--drain-only", action="store_true", help="1-worker drains, ours only")
    mode.add_argument(
        "--finish-cost", type=int, metavar="BATCHES", help="what rollups add to finish()"
    )
    mode.add_argument(
        "--latency-only",
        action="store_true",
        help="idle latency start() → body: ours, Celery (solo pool), --baseline",
    )
    mode.add_argument(
        "--start-only",
        action="store_true",
        help="start() one per transaction beside bare psycopg INSERT+COMMIT, --baseline",
    )
    parser.add_argument("--count", type=int, help="runs per drain (50,000) / starts (2,000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (drain 5, others 3)")
    parser.add_argument("--samples", type=int, default=60, help="latency samples per round")
    parser.add_argument(
        "--baseline", type=Path, metavar="SRC", help="another checkout's src, for an A/B"
    )
    parser.add_argument("--mariadb", action="store_true", help="--drain-only on MariaDB")
    parser.add_argument("--no-celery", action="store_true", help="--latency-only without Celery")
    parser.add_argument(
        "--db-prefix",
        default="dgt_bench",
        help="prefix of the databases --drain-only / --latency-only / --start-only create and drop",
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = _arguments()
    if args.finish_cost:
        finish_cost(args.finish_cost)
    elif args.drain_only:
        drain_only(
            args.count or 50_000,
            args.rounds or 5,
            args.baseline,
            "mysql" if args.mariadb else "postgresql",
            args.db_prefix,
        )
    elif args.latency_only or args.start_only:
        import latency

        latency.run(args)
    else:
        main(quick=args.quick)
