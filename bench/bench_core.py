"""Core overhead: ``start()`` on ImmediateBackend vs ``run()``, and ThreadingBackend throughput.

1. ``Task(params).start()`` on the default ``ImmediateBackend`` (serialise, hand over, look up,
   validate from JSON, run, report) vs ``Task(params).run()`` called directly.
2. 10,000 no-op tasks, from the first ``start()`` to the last run finished: ``ThreadingBackend``
   (4 workers) vs a bare ``concurrent.futures.ThreadPoolExecutor(4).submit(task.run)`` vs a new
   ``threading.Thread`` per task (the seed's way). Goal: within 1.5x of the bare executor and
   ahead of thread-per-task.

Every variant builds the same task object from the same params; medians of several runs,
measured in one process, in alternation. Run: ``.venv/bin/python bench/bench_core.py [--quick]``.
"""

from __future__ import annotations

import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def _configure() -> None:
    """Minimal settings, like a production process (no DEBUG logging of every run)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["django_generic_tasks"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            USE_TZ=True,
        )
        django.setup()


_configure()

from pydantic import BaseModel  # noqa: E402

import django_generic_tasks as tasks  # noqa: E402
from django_generic_tasks.backends import ImmediateBackend, ThreadingBackend  # noqa: E402

WORKERS = 4


class NoopParams(BaseModel):
    """A realistic small payload."""

    user_id: int
    subject: str


class NoopTask(tasks.Task[NoopParams]):
    """Does nothing."""

    name = "bench.core.noop"

    def run(self) -> None:
        return None


PARAMS = NoopParams(user_id=42, subject="Welcome")


def _timed(fn: Callable[[], None]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all threads of this process) of one call of ``fn``."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _direct(n: int) -> Callable[[], None]:
    def go() -> None:
        for _ in range(n):
            NoopTask(PARAMS).run()

    return go


def _immediate(n: int) -> Callable[[], None]:
    backend = ImmediateBackend()

    def go() -> None:
        for _ in range(n):
            NoopTask(PARAMS).start(backend=backend)

    return go


def _threading_backend(n: int) -> Callable[[], None]:
    def go() -> None:
        backend = ThreadingBackend(max_workers=WORKERS)
        for _ in range(n):
            NoopTask(PARAMS).start(backend=backend)
        backend.wait_idle()
        backend.close()

    return go


def _bare_executor(n: int) -> Callable[[], None]:
    def go() -> None:
        executor = ThreadPoolExecutor(max_workers=WORKERS)
        for _ in range(n):
            executor.submit(NoopTask(PARAMS).run)
        executor.shutdown(wait=True)

    return go


def _thread_per_task(n: int) -> Callable[[], None]:
    def go() -> None:
        threads = []
        for _ in range(n):
            thread = threading.Thread(target=NoopTask(PARAMS).run)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()

    return go


def _alternate(
    variants: dict[str, Callable[[], None]], rounds: int
) -> dict[str, tuple[float, float, float]]:
    """Run the variants in turn, ``rounds`` times; per variant: median wall time, spread of
    the wall times relative to the median, median CPU time (CPU is steadier on a busy host)."""
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            wall, cpu = _timed(fn)
            walls[name].append(wall)
            cpus[name].append(cpu)
    result = {}
    for name in variants:
        median = statistics.median(walls[name])
        spread = (max(walls[name]) - min(walls[name])) / median
        result[name] = (median, spread, statistics.median(cpus[name]))
    return result


def main(quick: bool = False) -> None:
    """Print both tables (``quick``: small counts, a few seconds in all)."""
    calls = 2_000 if quick else 20_000
    runs = 2_000 if quick else 10_000
    rounds = 5 if quick else 7

    for warm in (_direct(200), _immediate(200), _threading_backend(200), _bare_executor(200)):
        warm()

    start = _alternate({"direct": _direct(calls), "immediate": _immediate(calls)}, rounds)
    direct, immediate = start["direct"][0], start["immediate"][0]
    print(f"### ImmediateBackend: start() vs run() ({calls:,} calls, median of {rounds})\n")
    print("| variant | per call (µs) | calls/s | spread | ratio vs run() |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, (seconds, spread, _) in [
        ("`Task(params).run()`", start["direct"]),
        ("`Task(params).start()` on ImmediateBackend", start["immediate"]),
    ]:
        print(
            f"| {label} | {seconds / calls * 1e6:.1f} | {calls / seconds:,.0f} | "
            f"{spread:.0%} | {seconds / direct:.2f}x |"
        )
    print(f"\nstart() adds {(immediate - direct) / calls * 1e6:.1f} µs per call.\n")

    pool = _alternate(
        {
            "ours": _threading_backend(runs),
            "executor": _bare_executor(runs),
            "thread": _thread_per_task(runs),
        },
        rounds,
    )
    baseline, baseline_cpu = pool["executor"][0], pool["executor"][2]
    print(f"### ThreadingBackend throughput ({runs:,} no-op tasks, {WORKERS} workers, ", end="")
    print(f"median of {rounds})\n")
    print(
        "| variant | total (s) | tasks/s | spread | ratio vs bare executor "
        "| CPU µs/task | CPU ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, (seconds, spread, cpu) in [
        ("`ThreadingBackend` (`Task(params).start()`)", pool["ours"]),
        ("bare `ThreadPoolExecutor.submit(task.run)`", pool["executor"]),
        ("new `threading.Thread` per task (seed)", pool["thread"]),
    ]:
        print(
            f"| {label} | {seconds:.3f} | {runs / seconds:,.0f} | {spread:.0%} | "
            f"{seconds / baseline:.2f}x | {cpu / runs * 1e6:.1f} | {cpu / baseline_cpu:.2f}x |"
        )
    ours, thread, ours_cpu = pool["ours"][0], pool["thread"][0], pool["ours"][2]
    verdict = "meets" if ours <= 1.5 * baseline and ours < thread else "misses"
    print(
        f"\nGoal (<= 1.5x the bare executor, ahead of thread-per-task): {verdict} "
        f"({ours / baseline:.2f}x the executor's wall time, {ours_cpu / baseline_cpu:.2f}x its "
        f"CPU time; {thread / ours:.1f}x faster than thread-per-task)."
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
