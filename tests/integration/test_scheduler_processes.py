"""Real ``tasks_scheduler`` and ``tasks_worker --scheduler`` processes on an every-1s schedule:
each slot fires exactly once, and a SIGKILLed scheduler loses and doubles nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.worker_procs import MANAGE, TABLE, ProcDB, stop, wait_for

pytestmark = pytest.mark.slow
SLOTS = "django_generic_tasks_scheduleslot"


@pytest.fixture
def procdb(procdb: ProcDB) -> ProcDB:
    """The shared process database, with the schedule test tasks imported by its processes."""
    procdb.env["TASKS_TEST_IMPORT"] = "tests.integration.schedule_tasks"
    return procdb


def spawn(db: ProcDB, *args: str) -> subprocess.Popen[bytes]:
    log = (db.tmp / f"proc-{len(db.workers)}.log").open("wb")
    command = [sys.executable, str(MANAGE), *args]
    proc = subprocess.Popen(command, env=db.env, stdout=log, stderr=log)
    db.workers.append(proc)
    return proc


def as_utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def slots_fired(db: ProcDB) -> int:
    """How many slots of the every-second schedule have fired so far."""
    return int(
        db.query(f"SELECT COUNT(*) FROM {SLOTS} WHERE schedule_id = %s", ("tests.tick:1s",))[0][0]
    )


def kill_one_while_slots_fire(db: ProcDB, killed: subprocess.Popen[bytes]) -> None:
    """Let 4 slots fire, SIGKILL ``killed``, then let 4 more fire (by the survivor).

    Counted, not timed: on a loaded machine the processes take longer to start, and a fixed
    sleep then saw too few slots.
    """
    wait_for(lambda: slots_fired(db) >= 4, 60, "4 slots to fire")
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    at_kill = slots_fired(db)
    wait_for(lambda: slots_fired(db) >= at_kill + 4, 60, "the survivor to fire 4 more slots")


def check_each_slot_fired_once(db: ProcDB, killed: int | None = None) -> int:
    """Slots are consecutive seconds, each with one run whose body ran once (or, if it first
    ran on the worker process ``killed``, twice: at least once, its lease expired); return
    how many."""
    rows = db.query(
        f"SELECT slot_at, run_id, fired_at FROM {SLOTS} WHERE schedule_id = %s", ("tests.tick:1s",)
    )
    slots = sorted(as_utc(r[0]) for r in rows)
    assert len(slots) >= 8, "the schedulers fired too few slots"
    assert slots == [slots[0] + timedelta(seconds=i) for i in range(len(slots))], "a gap"
    assert all(r[2] is not None for r in rows)
    run_ids = {str(r[1]) for r in rows}
    assert len(run_ids) == len(rows)
    runs = db.query(f"SELECT id FROM {TABLE} WHERE task_name = %s", ("tests.tick",))
    assert {str(r[0]).replace("-", "") for r in runs} == {i.replace("-", "") for i in run_ids}
    wait_for(lambda: len(db.log.read_text().split()) >= len(rows), 30, "every run to finish")
    lines = [line.partition("@") for line in db.log.read_text().split()]
    bodies = Counter(run_id for run_id, _, _ in lines)
    assert set(bodies) == run_ids
    first_pid = {}
    for run_id, _, pid in lines:
        first_pid.setdefault(run_id, int(pid))
    again = {run_id for run_id, count in bodies.items() if count > 1}
    assert all(bodies[run_id] == 2 and first_pid[run_id] == killed for run_id in again), bodies
    return len(rows)


def test_two_scheduler_processes_fire_each_slot_once_even_when_one_is_killed(
    procdb: ProcDB,
) -> None:
    worker = spawn(procdb, "tasks_worker", "--interval", "0.1")
    first = spawn(procdb, "tasks_scheduler")
    second = spawn(procdb, "tasks_scheduler")
    kill_one_while_slots_fire(procdb, first)
    assert stop(second) == 0
    wait_for(
        lambda: (
            procdb.query(f"SELECT COUNT(*) FROM {TABLE} WHERE status <> 'succeeded'")[0][0] == 0
        ),
        30,
        "the worker to run every fired slot",
    )
    assert stop(worker) == 0
    check_each_slot_fired_once(procdb)


def test_two_workers_with_scheduler_fire_each_slot_once_even_when_one_is_killed(
    procdb: ProcDB,
) -> None:
    first = spawn(procdb, "tasks_worker", "--scheduler", "--interval", "0.1")
    second = spawn(procdb, "tasks_worker", "--scheduler", "--interval", "0.1", "--lease", "2")
    kill_one_while_slots_fire(procdb, first)
    wait_for(
        lambda: (
            procdb.query(f"SELECT COUNT(*) FROM {TABLE} WHERE status <> 'succeeded'")[0][0] == 0
        ),
        60,
        "the surviving worker to run every fired slot (and the killed one's after its lease)",
    )
    assert stop(second) == 0
    check_each_slot_fired_once(procdb, killed=first.pid)
