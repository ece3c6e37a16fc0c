"""CeleryBackend vs a plain Celery task with the same (no-op) body, same Redis broker, one run.

For each variant: start N runs onto a fresh queue (timed: starts/s, one per call), then start a
``celery worker --pool=solo`` on that queue and time the drain, from the first run taken to the
last one finished (worker start-up excluded), as the worker itself records it. Both tasks use
``acks_late`` and ``reject_on_worker_lost`` (ours sets them; the plain one is given them too).
Variants alternate, several rounds; medians are reported.

This module is also the worker's Celery app: ``celery -A bench.bench_celery worker``.
Run: ``.venv/bin/python bench/bench_celery.py [--quick]``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/13")

import tests.workerapp.tasks  # noqa: E402, F401  (the typed no-op task, in worker and driver)

app = Celery("bench", broker=BROKER, set_as_current=False)
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@app.task(name="bench.plain_noop", acks_late=True, reject_on_worker_lost=True)
def plain_noop(token: str) -> None:
    """The baseline: a plain Celery task whose body does nothing."""
    return None


# ---- worker side: count runs, record the first start and the last finish -----------------
_seen = {"count": 0, "first": 0.0, "cpu": 0.0}


@worker_ready.connect
def _quiet(**_: Any) -> None:
    # Production-like: our per-run DEBUG lines are not emitted.
    logging.getLogger("django_generic_tasks").setLevel(logging.INFO)


@task_prerun.connect
def _first(**_: Any) -> None:
    if _seen["count"] == 0 and not _seen["first"]:
        _seen["first"], _seen["cpu"] = time.time(), time.process_time()


@task_postrun.connect
def _last(**_: Any) -> None:
    _seen["count"] += 1
    if _seen["count"] == int(os.environ.get("BENCH_N", "0")):
        cpu = time.process_time() - _seen["cpu"]
        Path(os.environ["BENCH_OUT"]).write_text(f"{_seen['first']} {time.time()} {cpu}")


# ---- driver side -------------------------------------------------------------------------
def _setup() -> None:
    import django

    django.setup()


def _start_runs(variant: str, queue: str, count: int) -> float:
    from tests.workerapp.tasks import NoopTask

    from django_generic_tasks import conf
    from django_generic_tasks.backends.celery import CeleryBackend

    started = time.perf_counter()
    if variant == "plain":
        for _ in range(count):
            plain_noop.apply_async(("x",), queue=queue)
    else:
        with conf.override_backend(CeleryBackend(app=app, queues={"default": queue})):
            for _ in range(count):
                NoopTask({"token": "x"}).start()
    return count / (time.perf_counter() - started)


def _drain(queue: str, count: int, out: Path) -> tuple[float, float]:
    """Drain rate (runs/s) and the worker's CPU time per run (microseconds)."""
    env = {**os.environ, "BENCH_N": str(count), "BENCH_OUT": str(out), "PYTHONPATH": str(ROOT)}
    command = [str(Path(sys.executable).with_name("celery")), "-A", "bench.bench_celery"]
    command += ["worker", "--pool=solo", "-Q", queue, "-n", f"{queue}@%h", "-l", "warning"]
    command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not out.exists() or not out.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark's celery worker stopped before draining")
            time.sleep(0.05)
        first, last, cpu = map(float, out.read_text().split())
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    return count / (last - first), cpu / count * 1e6


def main(quick: bool = False) -> None:
    """Print the side-by-side table (quick: a few hundred runs, one round)."""
    import socket
    import tempfile

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        print("bench_celery: Redis is not reachable on 127.0.0.1:6379; skipped.\n")
        return
    _setup()
    count, rounds = (300, 1) if quick else (3000, 5)
    results: dict[str, dict[str, list[float]]] = {
        v: {"start": [], "drain": [], "cpu": []} for v in ("plain", "ours")
    }
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("plain", "ours"):  # warm-up: broker connections, imports
            warmup = f"bench-warmup-{uuid.uuid4().hex[:8]}"
            _start_runs(variant, warmup, 20)
            with app.connection_for_write() as connection:
                connection.default_channel.queue_delete(warmup)
        for round_number in range(rounds):
            for variant in ("plain", "ours") if round_number % 2 == 0 else ("ours", "plain"):
                queue = f"bench-{variant}-{uuid.uuid4().hex[:8]}"
                results[variant]["start"].append(_start_runs(variant, queue, count))
                out = Path(tmp) / f"{queue}.out"
                rate, cpu = _drain(queue, count, out)
                results[variant]["drain"].append(rate)
                results[variant]["cpu"].append(cpu)
    print(f"### CeleryBackend vs plain Celery task (Redis, solo pool, {count} no-op runs)\n")
    print(f"median of {rounds} round(s)\n")
    from paired_table import paired_table  # beside this file; workers need not import it

    print(
        paired_table(
            results,
            "plain Celery task",
            "CeleryBackend",
            {
                "start": "start, 1 per call (runs/s)",
                "drain": "drain, 1 worker (runs/s)",
                "cpu": "worker CPU per run (µs; ratio = plain / ours)",
            },
            lower_is_better=frozenset({"cpu"}),
        )
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
