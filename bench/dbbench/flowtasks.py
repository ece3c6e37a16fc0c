"""Tasks with limits for ``bench_flow.py`` (imported only with ``BENCH_FLOW=1``: a worker claims
through the limits whenever such tasks are registered, and the other benchmarks measure the
plain claim). Each body appends ``S``/``E`` lines (time, pid) to ``BENCH_FLOW_LOG``."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

import django_generic_tasks as tasks


def note(kind: str) -> None:
    """One short ``O_APPEND`` write: atomic across processes."""
    fd = os.open(os.environ["BENCH_FLOW_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {time.time():.6f} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


class Params(BaseModel):
    n: int
    sleep: float = 0.05


class Limited(tasks.Task[Params]):
    """At most 5 at once (one key)."""

    name = "bench.flow.limited"
    concurrency_limit = 5

    def run(self) -> None:
        note("S")
        time.sleep(self.params.sleep)
        note("E")


class Sleeper(tasks.Task[Params]):
    """The same body as ``Limited`` without a limit (the reference: 5 threads, no claim
    through the limits)."""

    name = "bench.flow.sleeper"

    def run(self) -> None:
        note("S")
        time.sleep(self.params.sleep)
        note("E")


class Rated(tasks.Task[Params]):
    """At most 100 starts a second (one key)."""

    name = "bench.flow.rated"
    rate_limit = "100/s"

    def run(self) -> None:
        note("S")
