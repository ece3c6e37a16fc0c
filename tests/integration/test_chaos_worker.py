"""Chaos: 2,000 runs of ours and 500 Django ``@task`` runs (``DatabaseTaskBackend``), 2 worker
processes, one SIGKILLed several times: nothing lost or stuck."""

from __future__ import annotations

import importlib.util
import random
import time
from functools import partial
from subprocess import Popen

import pytest

from tests.integration.worker_procs import TABLE, ProcDB, stop, wait_for

pytestmark = pytest.mark.slow

RUNS = 2000
DJANGO_RUNS = 500 if importlib.util.find_spec("django.tasks") is not None else 0
"""Django task runs, numbered after ours (none on Django 5.2, which has no ``django.tasks``)."""
KILLS = 4


def _started(procdb: ProcDB, proc: Popen[bytes]) -> bool:
    return "started" in procdb.worker_log(proc)


def test_killed_worker_loses_nothing_and_only_its_runs_repeat(procdb: ProcDB) -> None:
    procdb.start_runs(RUNS, sleep=0.02)
    if DJANGO_RUNS:
        procdb.enqueue_django(
            "chaos", [{"n": n, "sleep": 0.02} for n in range(RUNS, RUNS + DJANGO_RUNS)]
        )
    total = RUNS + DJANGO_RUNS
    worker_args = ("--concurrency", "4", "--batch", "8", "--lease", "2", "--interval", "0.2")
    steady = procdb.start_worker(*worker_args)
    victim = procdb.start_worker(*worker_args)
    rng = random.Random(5)
    for _ in range(KILLS):
        wait_for(partial(_started, procdb, victim), 30, "the victim to start")
        time.sleep(rng.uniform(0.3, 1.0))  # let it claim and run a few batches
        victim.kill()
        victim.wait()
        victim = procdb.start_worker(*worker_args)
    wait_for(
        lambda: procdb.statuses().get("succeeded", 0) == total,
        100,
        f"every run to succeed (now {dict(procdb.statuses())})",
    )
    # The last victim may still be starting (the steady worker can finish the rest alone): a
    # SIGTERM before its handlers exist ends it by the signal, not by a clean stop.
    wait_for(partial(_started, procdb, victim), 30, "the last victim to start")
    assert stop(victim) == 0
    assert stop(steady) == 0

    assert procdb.statuses() == {"succeeded": total}
    effects = procdb.side_effects()
    assert set(effects) == set(range(total)), "a run was lost"
    # Each run (ours and the Django tasks alike) returns its number, so ``result`` maps rows
    # to side effects.
    attempts = {
        int(result): int(attempt)
        for result, attempt in procdb.query(f"SELECT result, attempt FROM {TABLE}")
    }
    repeated = {n: count for n, count in effects.items() if count > 1}
    # At-least-once: a body runs again only when its worker was killed during an attempt.
    for n, count in repeated.items():
        assert attempts[n] >= count, f"run {n} ran {count} times in {attempts[n]} attempts"
    reclaimed = sum(1 for attempt in attempts.values() if attempt > 1)
    print(
        f"\n[{procdb.vendor}] {RUNS} runs + {DJANGO_RUNS} Django task runs, {KILLS} SIGKILLs: "
        f"{reclaimed} runs reclaimed after "
        f"their worker died, {len(repeated)} side effects repeated "
        f"({sum(repeated.values()) - len(repeated)} extra executions)"
    )
    assert reclaimed > 0, "the kills should have interrupted some runs"
