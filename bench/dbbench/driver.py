"""Client side of the database benchmark, run in the system's own interpreter.

``python driver.py enqueue N | bulk N | latency K | claim ROWS``; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from typing import Any

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dbbench.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

OURS = os.environ.get("BENCH_SYSTEM", "ours") == "ours"


def start(name: str, n: int) -> Any:
    """Start one run of ``name`` (``noop``/``stamp``); return its id."""
    from dbbench import tasks

    if OURS:
        task = tasks.Noop if name == "noop" else tasks.Stamp
        return task({"n": n}).start().id
    return getattr(tasks, name).enqueue(n).id


def enqueue(count: int) -> dict[str, float]:
    for n in range(20):  # warm-up: connection, imports, lazy settings
        start("noop", -n)
    began = time.perf_counter()
    for n in range(count):
        start("noop", n)  # autocommit: one transaction each
    return {"rate": count / (time.perf_counter() - began)}


def bulk(count: int) -> dict[str, float]:
    from dbbench import tasks

    began = time.perf_counter()
    with transaction.atomic():
        if OURS:
            tasks.Noop.start_many([{"n": n} for n in range(count)])
        else:
            for n in range(count):
                tasks.noop.enqueue(n)
    return {"rate": count / (time.perf_counter() - began)}


def _result(run_id: Any) -> float | None:
    if OURS:
        from django_generic_tasks.models import TaskRun

        return (
            TaskRun.objects.filter(pk=run_id, status="succeeded")
            .values_list("result", flat=True)
            .first()
        )
    from django_tasks_db.models import DBTaskResult

    return (
        DBTaskResult.objects.filter(pk=run_id, status="SUCCESSFUL")
        .values_list("return_value", flat=True)
        .first()
    )


def latency(samples: int) -> dict[str, Any]:
    rng = random.Random(7)
    values = []
    for index in range(samples + 5):
        time.sleep(rng.uniform(0.02, 0.1))
        began = time.time()
        run_id = start("stamp", index)
        deadline = time.monotonic() + 30
        while (body := _result(run_id)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("a latency run never finished")
            time.sleep(0.002)
        if index >= 5:  # warm-up
            values.append((float(body) - began) * 1000)
    return {"p50": statistics.median(values), "p95": _p95(values)}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def claim(rows: int) -> dict[str, float]:
    """Median time of claiming one due run, on an empty table and with ``rows`` finished."""
    from datetime import UTC, datetime

    from django_generic_tasks import store
    from django_generic_tasks.core.status import TaskStatus
    from django_generic_tasks.execution import Outcome
    from django_generic_tasks.models import TaskRun

    runs = store.for_connection(connection)

    def measure() -> float:
        times = []
        for n in range(120):
            start("noop", n)
            began = time.perf_counter()
            [run] = runs.queue.claim("bench", (), 1, 30, datetime.now(UTC))
            times.append(time.perf_counter() - began)
            done = Outcome(run.id, run.task_name, run.attempt, 1, TaskStatus.SUCCEEDED)
            runs.queue.finish("bench", [store.Finished(run, done, datetime.now(UTC))])
        return statistics.median(times[20:]) * 1000

    TaskRun.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE django_generic_tasks_taskrun")
    empty = measure()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, "
            "status, attempt, max_attempts, run_after, created_at, finished_at, error_type, "
            "error_message, error_traceback) SELECT gen_random_uuid(), 'bench.noop', "
            "'{\"n\": 1}', 'default', 0, 'succeeded', 1, 1, now(), now(), now(), '', '', '' "
            "FROM generate_series(1, %s)",
            [rows],
        )
        cursor.execute("VACUUM ANALYZE django_generic_tasks_taskrun")
    full = measure()
    return {"empty": empty, "full": full}


def naps(count: int, kind: str) -> dict[str, float]:
    """Start ``count`` runs of ``nap`` (async) or ``sync_nap`` in one transaction (ours)."""
    from dbbench import tasks

    task = tasks.Nap if kind == "nap" else tasks.SyncNap
    with transaction.atomic():
        task.start_many([{"n": n} for n in range(count)])
    return {"started": count}


if __name__ == "__main__":
    command, argument = sys.argv[1], int(sys.argv[2])
    actions: dict[str, Any] = {"enqueue": enqueue, "bulk": bulk, "latency": latency}
    actions.update(claim=claim, nap=lambda n: naps(n, "nap"), sync_nap=lambda n: naps(n, "sync"))
    result = actions[command](argument)
    print(json.dumps(result))
