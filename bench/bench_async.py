"""Async tasks, many at once (issue 23, item 5): N runs that each wait 0.1 s, on ONE worker.

Side by side, in the same run, each system draining the same N runs of a 0.1 s wait on one
worker process (PostgreSQL for ours, Redis db 14 for Celery):
- ours, ``async def run()`` awaiting ``asyncio.sleep(0.1)``, ``tasks_worker
  --async-concurrency 500`` (the ideal: N / 500 * 0.1 s, 2.0 s for 10,000);
- ours, the same wait as a sync task (``time.sleep``), ``--concurrency 32`` threads;
- Celery ``--pool threads -c 32`` and, when it installs in a throwaway virtualenv,
  ``--pool gevent -c 500`` (``time.sleep`` is patched to yield), both on Redis.
Drain: from the first run taken to the last one finished, as each system records it (worker
start-up excluded); worker peak RSS (``VmHWM``) and CPU time. Medians of the rounds, with their
min-max spread. Peers live in throwaway virtualenvs under ``.venv-bench/`` (git-ignored).
Run: ``.venv/bin/python bench/bench_async.py [--quick] [--count N] [--rounds R] [--no-celery]``.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_database as db  # noqa: E402

ASYNC_CONCURRENCY = 500
THREADS = 32
NAP = 0.1
DATABASE = os.environ.get("BENCH_ASYNC_DB", "dgt_bench_async")
db.PEERS.setdefault("celery_gevent", ["celery[redis]>=5.4,<6", "gevent>=24"])

SYSTEMS = {
    "async": f"ours, async def, --async-concurrency {ASYNC_CONCURRENCY}",
    "sync": f"ours, sync def, --concurrency {THREADS}",
    "celery_threads": f"Celery+Redis, --pool threads -c {THREADS}",
    "celery_gevent": f"Celery+Redis, --pool gevent -c {ASYNC_CONCURRENCY}",
}


def _watch(proc: subprocess.Popen[bytes], done: Any, timeout: float) -> dict[str, float]:
    """Poll the worker until ``done()`` holds (or it exits); its peak RSS and CPU time."""
    peak, cpu = 0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(status.split("VmHWM:")[1].split()[0]))
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
        result = done()
        if result is not None:
            return {**result, "rss_mb": peak / 1024, "cpu_s": cpu}
        if proc.poll() is not None and done() is None:
            raise RuntimeError(f"the worker exited ({proc.returncode}) before draining")
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not drain in time")
        time.sleep(0.05)


def _ours(kind: str, count: int) -> dict[str, float]:
    env = db._env("ours", DATABASE)
    db._sql("postgresql", "TRUNCATE django_generic_tasks_taskrun", DATABASE)
    db._run("ours", env, "nap" if kind == "async" else "sync_nap", str(count))
    command = [sys.executable, str(db.SITE / "manage.py"), "tasks_worker", "-v0", "--once"]
    if kind == "async":
        command += ["--async-concurrency", str(ASYNC_CONCURRENCY), "--batch", "500"]
    else:
        command += ["--concurrency", str(THREADS)]
    proc = subprocess.Popen(command, cwd=db.SITE, env=env, start_new_session=True)

    def done() -> dict[str, float] | None:
        [(finished, seconds)] = db._pg(
            "SELECT SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), "
            "EXTRACT(EPOCH FROM max(finished_at) - min(started_at)) "
            "FROM django_generic_tasks_taskrun",
            DATABASE,
        )
        return {"drain_s": float(seconds)} if finished and finished >= count else None

    try:
        return _watch(proc, done, 600)
    finally:
        db._stop([proc])


def _celery(pool: str, count: int, out: Path) -> dict[str, float]:
    system = "celery" if pool == "threads" else "celery_gevent"
    env = db._env("celery", DATABASE, BENCH_OUT=str(out))
    db._run("celery", env, "purge", "0")
    for stale in out.iterdir():
        stale.unlink()
    db._run("celery", env, "nap", str(count))
    concurrency = THREADS if pool == "threads" else ASYNC_CONCURRENCY
    command = [str(db.VENVS / system / "bin" / "celery"), "-A", "celery_app", "worker"]
    command += [f"--pool={pool}", f"--concurrency={concurrency}", "-l", "warning"]
    command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    proc = subprocess.Popen(
        command,
        cwd=db.SITE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def done() -> dict[str, float] | None:
        stats = [f.read_text().split() for f in out.iterdir()]
        stats = [s for s in stats if len(s) == 3]
        if sum(int(s[2]) for s in stats) < count:
            return None
        first, last = min(float(s[0]) for s in stats), max(float(s[1]) for s in stats)
        return {"drain_s": last - first}

    try:
        return _watch(proc, done, 600)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main(
    quick: bool = False,
    count: int | None = None,
    rounds: int | None = None,
    celery: bool = True,
) -> None:
    """Print the table (quick: 500 runs, one round, ours only)."""
    count = count or (500 if quick else 10_000)
    rounds = rounds or (1 if quick else 3)
    notes: list[str] = []
    systems = ["async", "sync"]
    if celery and not quick:
        for system, pool in (("celery", "threads"), ("celery_gevent", "gevent")):
            problem = db._build_venv(system)
            if problem:
                notes.append(f"Celery --pool {pool}: {problem}; left out")
            else:
                systems.append(f"celery_{pool}")
    db._fresh_database("ours", DATABASE)
    results: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(rounds):
                for system in systems:
                    if system in ("async", "sync"):
                        results[system].append(_ours(system, count))
                    else:
                        pool = system.removeprefix("celery_")
                        results[system].append(_celery(pool, count, Path(tmp)))
    finally:
        db._pg(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    _table(results, count, rounds, notes)


def _spread(values: list[float], unit: str) -> str:
    low, high = min(values), max(values)
    return f"{statistics.median(values):.2f} {unit} [{low:.2f}-{high:.2f}]"


def _table(
    results: dict[str, list[dict[str, float]]], count: int, rounds: int, notes: list[str]
) -> None:
    ideal = count / ASYNC_CONCURRENCY * NAP
    print(
        f"### {count:,} runs of a {NAP:g} s wait, one worker process "
        f"({rounds} round(s); median [min-max])\n"
    )
    print("| system | drain | runs/s | worker peak RSS | worker CPU |")
    print("| --- | --- | --- | --- | --- |")
    for system, values in results.items():
        drains = [v["drain_s"] for v in values]
        print(
            f"| {SYSTEMS[system]} | {_spread(drains, 's')} | "
            f"{count / statistics.median(drains):,.0f} | "
            f"{_spread([v['rss_mb'] for v in values], 'MB')} | "
            f"{_spread([v['cpu_s'] for v in values], 's')} |"
        )
    print(f"\n- The ideal drain at --async-concurrency {ASYNC_CONCURRENCY}: {ideal:.2f} s.")
    for note in notes:
        print(f"- {note}")
    print()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 runs, 1 round, ours only")
    parser.add_argument("--count", type=int, help="runs per drain (10,000)")
    parser.add_argument("--rounds", type=int, help="rounds (3)")
    parser.add_argument("--no-celery", action="store_true", help="ours only")
    args = parser.parse_args()
    main(args.quick, args.count, args.rounds, not args.no_celery)
