"""Chaos with a concurrency limit: 1,000 runs of 50 ms of one key with ``concurrency_limit =
3``, two worker processes, one SIGKILLed 4 times (and up to 12 in all, until a kill has landed
while a body ran): never more than 3 bodies at once (measured by the bodies), nothing lost, the
killed worker's slots back once its leases expire. And a rate limit across two worker
processes, measured by the bodies."""

from __future__ import annotations

import itertools
import json
import random
import time
from datetime import UTC, datetime
from functools import partial
from subprocess import Popen

import pytest

from tests.integration.flow_tasks import peak_running, read_log
from tests.integration.worker_procs import ProcDB, stop, wait_for

pytestmark = pytest.mark.slow

RUNS = 1000
KILLS = 4


@pytest.fixture
def flowdb(procdb: ProcDB) -> ProcDB:
    procdb.env["TASKS_TEST_IMPORT"] = "tests.integration.chaos_tasks,tests.integration.flow_tasks"
    procdb.env["FLOW_LOG"] = str(procdb.tmp / "flow.log")
    return procdb


def _start(procdb: ProcDB, task: str, count: int, **params: object) -> None:
    code = (
        "from django_generic_tasks.backends import DatabaseBackend\n"
        f"from tests.integration.flow_tasks import {task}\n"
        f"{task}.start_many([{{'n': i, **{params!r}}} for i in range({count})],"
        " backend=DatabaseBackend())\n"
    )
    procdb.manage("shell", "-v0", "-c", code)


def _started(procdb: ProcDB, proc: Popen[bytes]) -> bool:
    return "started" in procdb.worker_log(proc)


def _running_on(procdb: ProcDB, proc: Popen[bytes]) -> tuple[bool, int]:
    """Whether a body has started in ``proc`` and not ended; how many runs' bodies have ended
    in any process."""
    open_bodies: set[int] = set()
    ended: set[int] = set()
    for kind, n, pid, _ in read_log(procdb.env["FLOW_LOG"]):
        if kind == "E":
            ended.add(n)
        if pid == proc.pid:
            (open_bodies.add if kind == "S" else open_bodies.discard)(n)
    return bool(open_bodies), len(ended)


def test_a_concurrency_limit_holds_across_workers_and_sigkills(flowdb: ProcDB) -> None:
    _start(flowdb, "LimitedChaos", RUNS, sleep=0.05)
    args = ("--concurrency", "4", "--batch", "8", "--lease", "2", "--interval", "0.2")
    steady = flowdb.start_worker(*args)
    victim = flowdb.start_worker(*args)
    killed: dict[int, float] = {}
    kills: list[tuple[bool, int]] = []  # (a body was running when killed, bodies ended by then)
    rng = random.Random(7)
    ended = 0
    while len(killed) < KILLS or (
        not any(mid_body for mid_body, _ in kills)
        and len(killed) < 3 * KILLS
        and ended < RUNS * 0.8  # runs left to interrupt
    ):
        wait_for(partial(_started, flowdb, victim), 30, "the victim to start")
        time.sleep(rng.uniform(0.3, 1.0))
        # Kill it mid-run: the steady worker may hold every slot for a while.
        deadline = time.monotonic() + 30
        running, ended = _running_on(flowdb, victim)
        while not running and ended < RUNS and time.monotonic() < deadline:
            time.sleep(0.002)
            running, ended = _running_on(flowdb, victim)
        victim.kill()
        killed[victim.pid] = time.time()
        victim.wait()
        kills.append(_running_on(flowdb, victim))  # its log is final: it is dead
        victim = flowdb.start_worker(*args)
    wait_for(
        lambda: flowdb.statuses().get("succeeded", 0) == RUNS,
        120,
        f"every run to succeed (now {dict(flowdb.statuses())})",
    )
    wait_for(partial(_started, flowdb, victim), 30, "the last victim to start")
    assert stop(victim) == 0
    assert stop(steady) == 0
    assert flowdb.statuses() == {"succeeded": RUNS}
    lines = read_log(flowdb.env["FLOW_LOG"])
    ended = {n for kind, n, _, _ in lines if kind == "E"}
    assert ended == set(range(RUNS)), "a run was lost"
    peak = peak_running(lines, killed)
    reclaimed = len(flowdb.query("SELECT id FROM django_generic_tasks_taskrun WHERE attempt > 1"))
    print(f"\n[{flowdb.vendor}] limit 3: peak {peak} bodies at once, {reclaimed} runs reclaimed")
    assert peak == 3
    assert any(mid_body for mid_body, _ in kills), (
        f"no kill landed while a body ran (each kill: mid-body?, bodies ended by then: {kills})"
    )
    assert reclaimed > 0, "the interrupted runs should have run again"


def test_a_rate_limit_holds_across_two_workers(flowdb: ProcDB) -> None:
    count = 60  # 20/s: 3 seconds
    _start(flowdb, "RatedChaos", count)
    args = ("--concurrency", "4", "--interval", "0.05")
    workers = [flowdb.start_worker(*args), flowdb.start_worker(*args)]
    wait_for(
        lambda: flowdb.statuses().get("succeeded", 0) == count,
        60,
        f"every run to succeed (now {dict(flowdb.statuses())})",
    )
    for worker in workers:
        assert stop(worker) == 0
    started = {n: at for kind, n, _, at in read_log(flowdb.env["FLOW_LOG"]) if kind == "S"}
    assert sorted(started) == list(range(count))
    # Each run gets its turn (its run_after) from the key's bucket, evenly spaced at 20/s
    # across both workers, and never starts before it. It may start later (a worker claims it
    # at its next turn of the loop, later still on a loaded machine), so starts may bunch;
    # turns never do (so the whole takes at least (count - 1) / 20 s).
    turns = {}
    for params, run_after in flowdb.query(
        "SELECT params, run_after FROM django_generic_tasks_taskrun"
    ):
        turns[_json(params)["n"]] = _epoch(run_after)
    assert sorted(turns) == list(range(count))
    for n, at in started.items():
        assert at >= turns[n] - 0.005, f"run {n} started {turns[n] - at:.3f} s before its turn"
    spaced = sorted(turns.values())
    gaps = [later - earlier for earlier, later in itertools.pairwise(spaced)]
    assert min(gaps) >= 0.05 - 1e-5, f"two turns {min(gaps):.4f} s apart (the limit: 0.05 s)"


def _json(value: object) -> dict[str, int]:
    return value if isinstance(value, dict) else json.loads(str(value))  # jsonb, JSON, text


def _epoch(value: object) -> float:
    """A ``run_after`` as read by each driver (aware, naive UTC, or SQLite's text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
