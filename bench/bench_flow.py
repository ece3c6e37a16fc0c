"""Flow control on PostgreSQL (or ``--mariadb``), ``tasks_worker`` processes, measured by the
task bodies themselves (each appends its start and end to a file):

- ``concurrency_limit = 5``, 1,000 runs of 50 ms, 4 worker processes: the most bodies running
  at once (must be exactly 5) and the throughput (ideal: 100 runs/s);
- ``rate_limit = "100/s"``, 2 worker processes, a backlog of runs: starts per second over a
  30 s window (``--quick``: 10 s) in the middle of the drain, and the workers' CPU over that
  window (``/proc``), in % of one core each.

The unlimited drain (that the claim got no slower for runs without limits) is
``bench_database.py --drain-only --baseline SRC``. Run:
``.venv/bin/python bench/bench_flow.py [--quick] [--rounds N] [--mariadb]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_database as bd

TICKS = os.sysconf("SC_CLK_TCK")


def _start(env: dict[str, str], task: str, count: int) -> None:
    code = (
        "from dbbench.flowtasks import " + task + "\n"
        f"{task}.start_many([{{'n': i}} for i in range({count})])\n"
    )
    subprocess.run(
        [sys.executable, str(bd.SITE / "manage.py"), "shell", "-v0", "-c", code],
        env=env,
        cwd=bd.SITE,
        check=True,
        timeout=300,
        capture_output=True,
    )


def _workers(env: dict[str, str], count: int, *args: str) -> list[Any]:
    return [
        subprocess.Popen(
            [sys.executable, str(bd.SITE / "manage.py"), "tasks_worker", "-v0", *args],
            cwd=bd.SITE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]


def _lines(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        kind, at, _ = line.split()
        found.append((kind, float(at)))
    return found


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def concurrency_round(
    engine: str, db: str, task: str = "Limited", runs: int = 1000
) -> tuple[int, float]:
    """(peak bodies at once, runs/s) of ``runs`` 50 ms runs with limit 5 on 4 workers
    (``task="Sleeper"``: the reference, the same bodies without a limit on one worker of 5
    threads, which is as many at once)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "flow.log"
        env = bd._env("ours", db, engine, BENCH_FLOW="1", BENCH_FLOW_LOG=str(log))
        bd._fresh_database("ours", db, engine)
        _start(env, task, runs)
        procs = _workers(env, 4) if task == "Limited" else _workers(env, 1, "--concurrency", "5")
        try:
            deadline = time.monotonic() + 300
            while sum(1 for kind, _ in _lines(log) if kind == "E") < runs:
                assert time.monotonic() < deadline, "the runs did not drain in time"
                time.sleep(0.2)
        finally:
            bd._stop(procs)
        events = sorted(
            ((at, 1 if kind == "S" else -1) for kind, at in _lines(log)), key=lambda e: e
        )
        running = peak = 0
        for _, change in events:
            running += change
            peak = max(peak, running)
        return peak, runs / (events[-1][0] - events[0][0])


def rate_round(engine: str, db: str, window: float) -> tuple[float, float]:
    """(starts/s over ``window`` seconds, the workers' mean CPU % of a core meanwhile) with
    ``rate_limit = "100/s"`` on 2 workers."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "flow.log"
        env = bd._env("ours", db, engine, BENCH_FLOW="1", BENCH_FLOW_LOG=str(log))
        bd._fresh_database("ours", db, engine)
        total = int(100 * (window + 6))
        _start(env, "Rated", total)
        procs = _workers(env, 2)
        try:
            deadline = time.monotonic() + 60
            while not _lines(log):
                assert time.monotonic() < deadline, "no rated run started"
                time.sleep(0.05)
            time.sleep(2.0)  # past the start-up
            cpu_before = [_cpu_seconds(p.pid) for p in procs]
            began = time.time()
            time.sleep(window)
            ended = time.time()
            cpu = [_cpu_seconds(p.pid) - b for p, b in zip(procs, cpu_before, strict=True)]
        finally:
            bd._stop(procs)
        starts = sum(1 for kind, at in _lines(log) if kind == "S" and began <= at < ended)
        return starts / (ended - began), 100 * statistics.mean(cpu) / (ended - began)


def main(quick: bool = False, rounds: int = 3, mariadb: bool = False) -> None:
    """Print the table (``quick``: one round of 300 runs, a 4 s rate window; what
    ``bench/run.py --quick`` runs)."""
    rounds = 1 if quick else rounds
    window = 4.0 if quick else 30.0
    runs = 300 if quick else 1000
    engine = "mysql" if mariadb else "postgresql"
    try:
        bd._sql(engine, "SELECT 1", "mysql" if mariadb else "postgres")
    except Exception as exc:
        print(f"bench_flow: {engine} is not reachable ({exc}); skipped.\n")
        return
    db = "dgt_bench_flow"
    peaks, rates, references, measured, cpus = [], [], [], [], []
    for _ in range(rounds):
        peak, rate = concurrency_round(engine, db, runs=runs)
        peaks.append(peak)
        rates.append(rate)
        references.append(concurrency_round(engine, db, "Sleeper", runs)[1])
        per_second, cpu = rate_round(engine, db, window)
        measured.append(per_second)
        cpus.append(cpu)

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"

    print(f"\nflow control on {engine}, {rounds} round(s), medians [min-max]")
    print("| figure | measured | target |")
    print("| --- | --- | --- |")
    print(f"| concurrency_limit=5: most bodies at once | {max(peaks)} (each round: {peaks}) | 5 |")
    work = f"{runs:,} x 50 ms, 4 workers"
    print(f"| concurrency_limit=5: runs/s ({work}) | {spread(rates)} | >= 90 |")
    print(f"| reference, no limit, 1 worker x 5 threads: runs/s | {spread(references)} | 100 |")
    print(
        f"| rate_limit=100/s: starts/s over {window:g} s, 2 workers | {spread(measured)} | 95-105 |"
    )
    print(f"| rate_limit=100/s: worker CPU, % of a core | {spread(cpus)} | <= 5 |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one round of 300 runs, a 4 s rate window"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mariadb", action="store_true", help="MariaDB instead of PostgreSQL")
    args = parser.parse_args()
    main(args.quick, args.rounds, args.mariadb)
