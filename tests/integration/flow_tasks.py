"""Tasks with limits imported into worker processes by the flow control process tests
(``TASKS_TEST_IMPORT``, beside ``chaos_tasks``): each body appends ``S``/``E`` lines (run
number, pid, time) to the file named by ``FLOW_LOG`` as it starts and ends, so a test measures
from the bodies themselves how many ran at once, even across SIGKILLs."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

import django_generic_tasks as tasks


def note(kind: str, n: int) -> None:
    """Append one line to ``FLOW_LOG`` (one short ``write()`` with ``O_APPEND``: atomic)."""
    fd = os.open(os.environ["FLOW_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {n} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


class FlowParams(BaseModel):
    n: int
    sleep: float = 0.02
    key: str = "one"


class LimitedChaos(tasks.Task[FlowParams]):
    """At most 3 at once per key."""

    name = "tests.flow.limited"
    concurrency_limit = 3

    def concurrency_key(self) -> str:
        return self.params.key

    def run(self) -> int:
        note("S", self.params.n)
        time.sleep(self.params.sleep)
        note("E", self.params.n)
        return self.params.n


class RatedChaos(tasks.Task[FlowParams]):
    """At most 20 starts a second."""

    name = "tests.flow.rated"
    rate_limit = "20/s"

    def run(self) -> int:
        note("S", self.params.n)
        return self.params.n


def read_log(path: str) -> list[tuple[str, int, int, float]]:
    """The lines of a ``FLOW_LOG``: (kind, run number, pid, time)."""
    found = []
    with open(path, encoding="utf-8") as log:
        for line in log:
            kind, n, pid, at = line.split()
            found.append((kind, int(n), int(pid), float(at)))
    return found


def peak_running(lines: list[tuple[str, int, int, float]], killed: dict[int, float]) -> int:
    """The most bodies running at once: each from its ``S`` to its ``E``, or, for a body
    whose process was SIGKILLed first (``killed``: pid -> when), to the kill."""
    events: list[tuple[float, int]] = []
    open_starts: dict[tuple[int, int], float] = {}
    for kind, n, pid, at in lines:
        if kind == "S":
            open_starts[(n, pid)] = at
            events.append((at, 1))
        elif kind == "E" and (n, pid) in open_starts:
            del open_starts[(n, pid)]
            events.append((at, -1))
    for _n, pid in open_starts:
        assert pid in killed, f"a body in live process {pid} never ended"
        events.append((killed[pid], -1))
    events.sort(key=lambda event: (event[0], event[1]))
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak
