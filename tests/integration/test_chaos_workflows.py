"""Chaos for workflows: a 1,000-member group with a callback under 2 workers and 4 SIGKILLs
(every member done, the callback exactly once), and a continuation killed 5 times over 10,000
cursor steps (every item processed, completed steps never again, at most one item again per
kill: the cursor is saved at every advance)."""

from __future__ import annotations

import random
import time
from functools import partial
from subprocess import Popen

import pytest

from tests.integration.worker_procs import TABLE, ProcDB, stop, wait_for

pytestmark = pytest.mark.slow

MEMBERS = 1000
KILLS = 4
WORKER = ("--concurrency", "4", "--batch", "8", "--lease", "2", "--interval", "0.2")


def _started(procdb: ProcDB, proc: Popen[bytes]) -> bool:
    return "started" in procdb.worker_log(proc)


def test_a_group_survives_killed_workers_and_calls_back_once(procdb: ProcDB) -> None:
    procdb.manage(
        "shell",
        "-v0",
        "-c",
        "import django_generic_tasks as tasks\n"
        "from django_generic_tasks.backends import DatabaseBackend\n"
        "from tests.integration.chaos_tasks import ChaosCollect, ChaosMember\n"
        f"members = [ChaosMember({{'n': n, 'sleep': 0.08}}) for n in range({MEMBERS})]\n"
        "tasks.group(members).then(ChaosCollect).start(backend=DatabaseBackend())\n",
    )
    steady = procdb.start_worker(*WORKER)
    victim = procdb.start_worker(*WORKER)
    rng = random.Random(7)
    for _ in range(KILLS):
        wait_for(partial(_started, procdb, victim), 30, "the victim to start")
        time.sleep(rng.uniform(0.3, 1.0))
        victim.kill()
        victim.wait()
        victim = procdb.start_worker(*WORKER)
    wait_for(lambda: -1 in procdb.side_effects(), 120, "the callback to run")
    wait_for(partial(_started, procdb, victim), 30, "the last victim to start")
    time.sleep(0.5)  # a second callback, were there one, would have run by now
    assert stop(victim) == 0
    assert stop(steady) == 0

    effects = procdb.side_effects()
    assert effects[-1] == 1, "the callback ran once, with the results in member order"
    assert -2 not in effects
    assert {n for n in effects if n >= 0} == set(range(MEMBERS)), "a member was lost"
    assert procdb.statuses() == {"succeeded": MEMBERS + 1}
    attempts = {
        int(result): int(attempt)
        for result, attempt in procdb.query(
            f"SELECT result, attempt FROM {TABLE} WHERE task_name = 'tests.chaos.member'"
        )
    }
    repeated = {n: count for n, count in effects.items() if n >= 0 and count > 1}
    for n, count in repeated.items():  # again only when its worker was killed mid-run
        assert attempts[n] >= count, f"member {n} ran {count} times in {attempts[n]} attempts"
    (workflow,) = procdb.query("SELECT status, done, failed FROM django_generic_tasks_taskworkflow")
    assert tuple(workflow) == ("succeeded", MEMBERS, 0)
    print(
        f"\n[{procdb.vendor}] group of {MEMBERS}, {KILLS} SIGKILLs: "
        f"{sum(1 for a in attempts.values() if a > 1)} members reclaimed, "
        f"{len(repeated)} side effects repeated; the callback ran once"
    )


ITEMS = 10_000
CONTINUATION_KILLS = 5


def test_a_continuation_killed_five_times_resumes_from_its_cursor(procdb: ProcDB) -> None:
    procdb.manage(
        "shell",
        "-v0",
        "-c",
        "from django_generic_tasks.backends import DatabaseBackend\n"
        "from tests.integration.chaos_tasks import ChaosSweep\n"
        f"ChaosSweep({{'items': {ITEMS}, 'sleep': 0.0002}}).start(backend=DatabaseBackend())\n",
    )
    args = ("--concurrency", "1", "--lease", "1", "--interval", "0.1")
    worker = procdb.start_worker(*args)
    rng = random.Random(11)
    for number in range(CONTINUATION_KILLS):
        target = (number + 1) * ITEMS // (CONTINUATION_KILLS + 2) + rng.randrange(200)
        wait_for(
            lambda target=target: (
                sum(1 for n in procdb.side_effects().elements() if n >= 0) >= target
            ),
            120,
            f"the sweep to reach item {target}",
        )
        worker.kill()
        worker.wait()
        worker = procdb.start_worker(*args)
    wait_for(lambda: procdb.statuses() == {"succeeded": 1}, 180, "the sweep to finish")
    assert stop(worker) == 0

    effects = procdb.side_effects()
    assert effects[-1] == 1, "the completed prepare step ran again"
    assert {n for n in effects if n >= 0} == set(range(ITEMS)), "an item was skipped"
    again = sum(count - 1 for n, count in effects.items() if n >= 0)
    assert again <= CONTINUATION_KILLS, f"{again} items processed again after 5 kills"
    print(
        f"\n[{procdb.vendor}] {ITEMS} cursor steps, {CONTINUATION_KILLS} SIGKILLs: "
        f"{again} items processed again (the cursor is saved at every advance)"
    )
