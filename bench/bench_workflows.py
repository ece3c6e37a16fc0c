"""Workflows on DatabaseBackend: what a fan-in costs on a drain, and a chain's step-to-step gap.

- a group of N no-op members with a callback, drained by one worker process, against the same
  N runs started alone: from the first member started to the callback finished (the runs
  alone: to the last finished), as the database records it; rounds alternate;
- a chain of S no-op steps with an idle worker: from one step's outcome written (its
  ``finished_at``, the transaction that also inserts the next step) to the next step's claim
  (``started_at``), p50 and p95.

The database follows ``DATABASE_URL`` (default: PostgreSQL on 127.0.0.1:5432); each round uses
a fresh private database (``tests/integration/worker_procs.ProcDB``).
Run: ``.venv/bin/python bench/bench_workflows.py [--quick]``.
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


from tests.integration.worker_procs import ProcDB, stop, wait_for  # noqa: E402

WORKER = ("--concurrency", "4", "--interval", "0.05")


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _shell(db: ProcDB, code: str) -> None:
    db.manage("shell", "-v0", "-c", "from django_generic_tasks.backends import DatabaseBackend\n"
              "import django_generic_tasks as tasks\n"
              "from tests.integration.chaos_tasks import ChaosCollect, ChaosHop, ChaosMember\n"
              + code)  # fmt: skip


def _span(db: ProcDB, count: int, status: str = "succeeded") -> float:
    wait_for(lambda: db.statuses().get(status, 0) >= count, 600, f"{count} runs to finish")
    rows = db.query(
        "SELECT started_at, finished_at FROM django_generic_tasks_taskrun WHERE status = %s",
        (status,),
    )
    return max(_seconds(r[1]) for r in rows) - min(_seconds(r[0]) for r in rows)


def drain_once(members: int, group: bool) -> float:
    """Seconds to drain ``members`` no-op runs (with ``group``: as a group with a callback)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = ProcDB(Path(tmp))
        try:
            starts = f"[ChaosMember({{'n': n}}) for n in range({members})]"
            if group:
                _shell(db, f"tasks.group({starts}).then(ChaosCollect).start("
                           "backend=DatabaseBackend())\n")  # fmt: skip
            else:
                _shell(db, f"ChaosMember.start_many([{{'n': n}} for n in range({members})], "
                           "backend=DatabaseBackend())\n")  # fmt: skip
            worker = db.start_worker(*WORKER)
            try:
                return _span(db, members + 1 if group else members)
            finally:
                stop(worker)
        finally:
            db.close()


def chain_gaps(steps: int) -> list[float]:
    """Milliseconds from each step's outcome to the next step's claim, idle worker."""
    with tempfile.TemporaryDirectory() as tmp:
        db = ProcDB(Path(tmp))
        try:
            worker = db.start_worker(*WORKER)
            wait_for(lambda: "started" in db.worker_log(worker), 60, "the worker to start")
            time.sleep(0.5)
            hops = ", ".join(["ChaosHop"] * (steps - 1))
            _shell(db, f"tasks.chain(ChaosHop({{'n': 0}}), {hops}).start("
                       "backend=DatabaseBackend())\n")  # fmt: skip
            wait_for(lambda: db.statuses().get("succeeded", 0) >= steps, 300, "the chain")
            stop(worker)
            rows = db.query(
                "SELECT started_at, finished_at FROM django_generic_tasks_taskrun "
                "ORDER BY started_at"
            )
            return [
                (_seconds(nxt[0]) - _seconds(prev[1])) * 1000
                for prev, nxt in itertools.pairwise(rows)
            ]
        finally:
            db.close()


def main(quick: bool = False) -> None:
    """Print the two tables."""
    members, rounds, steps = (300, 1, 10) if quick else (10_000, 3, 100)
    vendor = os.environ["DATABASE_URL"].split(":", 1)[0]
    alone: list[float] = []
    grouped: list[float] = []
    for _ in range(rounds):
        alone.append(drain_once(members, group=False))
        grouped.append(drain_once(members, group=True))
    print(f"### Fan-in drain, {members:,} no-op members, 1 worker, {vendor} ({rounds} rounds)\n")
    print("| what | median s | min | max |")
    print("| --- | --- | --- | --- |")
    for label, values in (("runs started alone", alone), ("group + callback", grouped)):
        print(
            f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )
    print(f"\ngroup / alone: {statistics.median(grouped) / statistics.median(alone):.3f}x\n")
    gaps = sorted(chain_gaps(steps))
    p95 = gaps[int(len(gaps) * 0.95) - 1] if len(gaps) > 1 else gaps[0]
    print(f"### Chain of {steps} no-op steps, idle worker, {vendor}\n")
    print("| step end -> next step start | p50 ms | p95 ms | min | max |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| | {statistics.median(gaps):.2f} | {p95:.2f} | {gaps[0]:.2f} | {gaps[-1]:.2f} |")


if __name__ == "__main__":
    main("--quick" in sys.argv)
