"""The Celery side of the benchmark (Redis broker, no result backend, prefork workers).

Worker children record their first start, last finish and count in ``BENCH_OUT/<pid>``;
``stamp`` appends ``sent began`` lines to ``BENCH_LATENCY``.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

app = Celery("dbbench", broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/14"))
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_ignore_result=True,
)
_seen: dict[str, Any] = {"fd": None, "first": 0.0, "count": 0}
_counting = threading.Lock()  # the threads and gevent pools finish runs side by side


@app.task(name="bench.noop")
def noop(n: int) -> None:
    """Does nothing."""
    return None


@app.task(name="bench.nap")
def nap(n: int) -> None:
    """Waits 0.1 s (an API call's wait), blocking its thread (or greenlet, under gevent)."""
    time.sleep(0.1)


@app.task(name="bench.stamp")
def stamp(sent: float) -> None:
    """Records when it was sent and when its body began."""
    began = time.time()
    with open(os.environ["BENCH_LATENCY"], "a") as out:
        out.write(f"{sent} {began}\n")


@task_prerun.connect
def _first(**_: Any) -> None:
    if not _seen["first"]:
        _seen["first"] = time.time()


@task_postrun.connect
def _last(**_: Any) -> None:
    out = os.environ.get("BENCH_OUT")
    if not out:
        return
    with _counting:
        if _seen["fd"] is None:
            _seen["fd"] = os.open(os.path.join(out, str(os.getpid())), os.O_WRONLY | os.O_CREAT)
        _seen["count"] += 1
        line = f"{_seen['first']:.6f} {time.time():.6f} {_seen['count']:010d}"
        os.pwrite(_seen["fd"], line.encode(), 0)


def _enqueue(count: int) -> dict[str, float]:
    for n in range(20):  # warm-up: connection, imports
        noop.delay(-n)
    began = time.perf_counter()
    for n in range(count):
        noop.delay(n)
    return {"rate": count / (time.perf_counter() - began)}


def _bulk(count: int) -> dict[str, float]:
    began = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for n in range(count):
            noop.apply_async((n,), producer=producer)
    return {"rate": count / (time.perf_counter() - began)}


def _naps(count: int) -> dict[str, float]:
    with app.producer_or_acquire() as producer:
        for n in range(count):
            nap.apply_async((n,), producer=producer)
    return {"started": count}


def _purge(_: int) -> dict[str, float]:
    return {"purged": float(app.control.purge())}


def _latency(samples: int) -> dict[str, float]:
    rng = random.Random(7)
    path = os.environ["BENCH_LATENCY"]
    for _ in range(samples + 5):
        time.sleep(rng.uniform(0.02, 0.1))
        stamp.delay(time.time())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = Path(path).read_text().split("\n") if os.path.exists(path) else []
        pairs = [tuple(map(float, line.split())) for line in lines if line]
        if len(pairs) >= samples + 5:
            values = sorted((b - a) * 1000 for a, b in pairs[5:])
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            return {"p50": statistics.median(values), "p95": p95}
        time.sleep(0.05)
    raise RuntimeError("latency runs never finished")


if __name__ == "__main__":
    command, argument = sys.argv[1], int(sys.argv[2])
    actions = {"enqueue": _enqueue, "bulk": _bulk, "latency": _latency, "purge": _purge}
    actions["nap"] = _naps
    print(json.dumps(actions[command](argument)))
