"""Periodic tasks: firing delay (slot time -> first line of the body) and idle scheduler CPU.

Side by side in one run, on an every-1-second schedule:
- ours: ``tasks_worker --scheduler`` (DatabaseBackend, PostgreSQL, LISTEN/NOTIFY), and
  ``tasks_scheduler`` + ``tasks_worker`` as two processes;
- Celery beat + a ``--pool=solo`` worker on Redis, firing the same every-1s schedule (its slot:
  the time beat meant to send the entry, ``last_run_at + run_every``).
Delay p50/p95 over ``seconds`` of slots per system. Then the CPU of an idle scheduler holding
10,000 schedules (none due while measured), as a share of one core.
Targets (shared/performance.md): p95 <= 100 ms; idle CPU <= 2 % of a core.
Run: ``.venv/bin/python bench/bench_schedules.py [--quick]`` (needs PostgreSQL and Redis).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANAGE = ROOT / "tests" / "manage.py"
BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/14")
STAMPS = os.environ.get("BENCH_SCHED_STAMPS", "")

# ---- Celery side: the app, the task, and a beat scheduler that passes each entry's slot ----
from celery import Celery  # noqa: E402
from celery import beat as celery_beat  # noqa: E402

app = Celery("bench_schedules", broker=BROKER, set_as_current=False)
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={"tick": {"task": "bench.sched_tick", "schedule": 1.0}},
    beat_max_loop_interval=5,
)


def _stamp(line: str) -> None:
    fd = os.open(STAMPS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@app.task(name="bench.sched_tick")
def celery_tick(slot: float = 0.0) -> None:
    """The Celery body: record the delay from its slot."""
    _stamp(f"celery {time.time() - slot:.6f}")


class SlotScheduler(celery_beat.Scheduler):
    """Beat's in-memory scheduler, telling each sent entry the time it was due."""

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kw: Any) -> Any:
        """Send ``entry`` with ``slot`` = when it was due."""
        due = entry.last_run_at + entry.schedule.run_every
        entry.kwargs = {"slot": due.timestamp()}
        return super().apply_async(entry, producer, advance, **kw)


# ---- our side: a task with an every-1s schedule (in the worker/scheduler processes only) ----
if os.environ.get("BENCH_SCHED_OURS") == "1":
    import threading

    from django.conf import settings
    from pydantic import BaseModel

    import django_generic_tasks as tasks
    from django_generic_tasks.signals import task_started

    settings.TASKS_BACKEND = "django_generic_tasks.backends.DatabaseBackend"
    _current = threading.local()

    def _remember(run_id: str, **_: Any) -> None:
        _current.run_id = run_id

    task_started.connect(_remember)

    class TickParams(BaseModel):
        """Nothing."""

    class Tick(tasks.Task[TickParams]):
        """Records when its body began, by run id."""

        name = "bench.sched_tick"
        schedules = [tasks.Schedule(every=timedelta(seconds=1), name="1s")]

        def run(self) -> None:
            _stamp(f"ours {_current.run_id} {time.time():.6f}")


# ---- the driver --------------------------------------------------------------------------


def _pg(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


class Database:
    """A fresh PostgreSQL database with our migrations."""

    def __init__(self) -> None:
        self.name = f"dgt_bench_sched_{uuid.uuid4().hex[:8]}"
        self.admin = "host=127.0.0.1 user=postgres dbname=postgres"
        _pg(self.admin, f'CREATE DATABASE "{self.name}"')
        self.dsn = self.admin.replace("dbname=postgres", f"dbname={self.name}")
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.name}",
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run([sys.executable, str(MANAGE), "migrate", "-v0"], env=self.env, check=True)

    def drop(self) -> None:
        _pg(self.admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def ours(db: Database, seconds: float, split: bool, stamps: Path) -> list[float]:
    """Delays (ms) of our every-1s schedule: worker with scheduler, or two processes."""
    env = {
        **db.env,
        "BENCH_SCHED_OURS": "1",
        "BENCH_SCHED_STAMPS": str(stamps),
        "TASKS_TEST_IMPORT": "bench.bench_schedules",
    }
    manage = [sys.executable, str(MANAGE)]
    if split:
        procs = [
            _spawn([*manage, "tasks_scheduler", "-v0"], env),
            _spawn([*manage, "tasks_worker", "-v0"], env),
        ]
    else:
        procs = [_spawn([*manage, "tasks_worker", "--scheduler", "-v0"], env)]
    time.sleep(3 + seconds)  # start-up, then the measured slots
    _stop(procs)
    slots = dict(
        _pg(
            db.dsn,
            "SELECT run_id, EXTRACT(EPOCH FROM slot_at) FROM django_generic_tasks_scheduleslot",
        )
    )
    delays = []
    for line in stamps.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ours" and parts[1] in slots:
            delays.append((float(parts[2]) - float(slots[parts[1]])) * 1000)
    _pg(db.dsn, "TRUNCATE django_generic_tasks_scheduleslot, django_generic_tasks_taskrun")
    return delays[2:]  # the first slots pay for imports and connections


def celery(seconds: float, stamps: Path) -> list[float]:
    """Delays (ms) of the same schedule fired by Celery beat to a solo worker."""
    env = {**os.environ, "BENCH_SCHED_STAMPS": str(stamps), "PYTHONPATH": str(ROOT)}
    celery_bin = str(Path(sys.executable).with_name("celery"))
    base = [celery_bin, "-A", "bench.bench_schedules"]
    queue = f"bench-sched-{uuid.uuid4().hex[:6]}"
    app.conf.beat_schedule["tick"]["options"] = {"queue": queue}
    env["BENCH_SCHED_QUEUE"] = queue
    procs = [
        _spawn([*base, "worker", "--pool=solo", "-Q", queue, "--loglevel=WARNING"], env),
        _spawn(
            [*base, "beat", "-S", "bench.bench_schedules:SlotScheduler", "--loglevel=WARNING"], env
        ),
    ]
    time.sleep(5 + seconds)
    _stop(procs)
    delays = [
        float(line.split()[1]) * 1000
        for line in stamps.read_text().split("\n")
        if line.startswith("celery ")
    ]
    return delays[2:]


if os.environ.get("BENCH_SCHED_QUEUE"):
    app.conf.beat_schedule["tick"]["options"] = {"queue": os.environ["BENCH_SCHED_QUEUE"]}


IDLE_SCRIPT = """
import os, sys, threading, time
sys.path[:0] = [{root!r}]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()
from datetime import timedelta
import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.schedules.scheduler import Scheduler
from django_generic_tasks.core.schedule import resolve
from tests.testapp.tasks import AddTask
entries = [
    resolve(AddTask, tasks.Schedule(cron=f"{{i % 60}} {{i // 60 % 24}} 1 1 *", params={{"a": i}}),
            f"idle:{{i}}")
    for i in range({count})
]
scheduler = Scheduler(entries, DatabaseBackend())
thread = threading.Thread(target=scheduler.run, daemon=True)
thread.start()
time.sleep(2)
cpu0, wall0 = time.process_time(), time.monotonic()
time.sleep({seconds})
print((time.process_time() - cpu0) / (time.monotonic() - wall0))
scheduler.stop()
thread.join(10)
"""


def idle_cpu(db: Database, count: int, seconds: float) -> float:
    """Share of one core an idle scheduler with ``count`` schedules uses."""
    script = IDLE_SCRIPT.format(root=str(ROOT), count=count, seconds=seconds)
    out = subprocess.run(
        [sys.executable, "-c", script], env=db.env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(quick: bool = False) -> None:
    """Measure and print the table."""
    import tempfile

    seconds = 4.0 if quick else 60.0  # quick: a smoke run (CI), a few slots each
    db = Database()
    rows: list[tuple[str, list[float]]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for label, run in (
                ("ours: tasks_worker --scheduler", lambda p: ours(db, seconds, False, p)),
                ("ours: tasks_scheduler + tasks_worker", lambda p: ours(db, seconds, True, p)),
                ("Celery beat + worker (solo, Redis)", lambda p: celery(seconds, p)),
            ):
                stamps = Path(tmp) / f"{len(rows)}.log"
                stamps.touch()
                rows.append((label, run(stamps)))
            cpu = idle_cpu(db, 10_000, 4.0 if quick else 30.0)
    finally:
        db.drop()
    print(f"Every-1s schedule, {seconds:.0f} s per system (delay: slot time -> body start)\n")
    print("| system | slots | delay p50 | delay p95 | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, delays in rows:
        print(
            f"| {label} | {len(delays)} | {statistics.median(delays):.1f} ms | "
            f"{_pct(delays, 0.95):.1f} ms | {max(delays):.1f} ms |"
            if delays
            else f"| {label} | 0 | - | - | - |"
        )
    print(f"\nIdle scheduler with 10,000 schedules: {cpu * 100:.3f} % of one core")
    print("Targets: p95 <= 100 ms; idle CPU <= 2 % of a core.\n")


if __name__ == "__main__":
    main("--quick" in sys.argv)
