"""Tasks imported into worker processes by the process tests (``TASKS_TEST_IMPORT``).

Each run appends its number to the file named by ``CHAOS_LOG`` when it completes, so the test
counts side effects even across SIGKILLs (one short ``write()`` with ``O_APPEND`` is atomic).
"""

from __future__ import annotations

import asyncio
import os
import time

from pydantic import BaseModel

import django_generic_tasks as tasks


def record(n: int) -> int:
    """Append ``n`` to the ``CHAOS_LOG`` file (the side effects a test counts); return it."""
    fd = os.open(os.environ["CHAOS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n}\n".encode())
    finally:
        os.close(fd)
    return n


class ChaosParams(BaseModel):
    n: int
    sleep: float = 0.0


class ChaosTask(tasks.Task[ChaosParams]):
    """Sleeps, then records ``n`` in the side-effect log."""

    name = "tests.chaos"

    def run(self) -> int:
        time.sleep(self.params.sleep)
        return record(self.params.n)


class LoopParams(BaseModel):
    n: int


class LoopUntilCancelled(tasks.Task[LoopParams]):
    """Checks for a cancel every 10 ms for up to a minute (then records ``n``), retried."""

    name = "tests.chaos.loop_until_cancelled"
    max_attempts = 3

    def run(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_cancelled()
            time.sleep(0.01)
        return record(self.params.n)


class SquareParams(BaseModel):
    n: int
    fail: bool = False


class Square(BaseModel):
    n: int
    square: int


class SquareTask(tasks.Task[SquareParams, Square]):
    """A typed result, waited for from another process."""

    name = "tests.chaos.square"

    def run(self) -> Square:
        if self.params.fail:
            raise ValueError(f"no square for {self.params.n}")
        return Square(n=self.params.n, square=self.params.n**2)


class HoldParams(BaseModel):
    n: int


class HoldsItsConnection(tasks.Task[HoldParams]):
    """Sleeps 60 s inside a database query, unless the file ``CHAOS_LOG + '.resume'`` exists
    when it starts; then records ``n``. One attempt only (the default)."""

    name = "tests.chaos.holds_its_connection"

    def run(self) -> int:
        from django.db import connection

        if not os.path.exists(os.environ["CHAOS_LOG"] + ".resume"):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(60)")
        return record(self.params.n)


def record_span(n: int, began: float, ended: float) -> None:
    """Append ``n began ended`` to ``CHAOS_LOG + '.spans'`` (when an async body ran)."""
    fd = os.open(os.environ["CHAOS_LOG"] + ".spans", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{n} {began:.6f} {ended:.6f}\n".encode())
    finally:
        os.close(fd)


class AsyncChaos(tasks.Task[ChaosParams]):
    """Awaits a sleep on the worker's event loop, then records ``n`` and its span."""

    name = "tests.chaos.async"

    async def run(self) -> int:
        began = time.time()
        await asyncio.sleep(self.params.sleep)
        record_span(self.params.n, began, time.time())
        return record(self.params.n)


class AsyncSlow(tasks.Task[ChaosParams]):
    """Awaits ``sleep`` seconds, past its 0.5 s timeout when ``sleep`` is longer."""

    name = "tests.chaos.async_slow"
    timeout = 0.5

    async def run(self) -> int:
        await asyncio.sleep(self.params.sleep)
        return record(self.params.n)


class AsyncUntilCancelled(tasks.Task[LoopParams]):
    """Reports progress, then checks for a cancel every 10 ms for up to a minute."""

    name = "tests.chaos.async_until_cancelled"

    async def run(self) -> int:
        self.report_progress(1, 2, "waiting for a cancel")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_cancelled()
            await asyncio.sleep(0.01)
        return record(self.params.n)


class AsyncBlocks(tasks.Task[ChaosParams]):
    """The user's bug: a blocking sleep inside an async task (then records ``n``)."""

    name = "tests.chaos.async_blocks"

    async def run(self) -> int:
        time.sleep(self.params.sleep)
        return record(self.params.n)


class MemberParams(BaseModel):
    n: int
    sleep: float = 0.0


class ChaosMember(tasks.Task[MemberParams, int]):
    """A group member: sleeps, records ``n``, returns it."""

    name = "tests.chaos.member"

    def run(self) -> int:
        time.sleep(self.params.sleep)
        return record(self.params.n)


class CollectParams(BaseModel):
    results: list[int]


class ChaosCollect(tasks.Task[CollectParams, int]):
    """A group's callback: records -1 when it got every member's result in member order
    (-2 otherwise)."""

    name = "tests.chaos.collect"

    def run(self) -> int:
        in_order = self.params.results == list(range(len(self.params.results)))
        return record(-1 if in_order else -2)


class SweepParams(BaseModel):
    items: int
    sleep: float = 0.0


class ChaosSweep(tasks.Task[SweepParams, int]):
    """A continuation: a ``prepare`` step (records -1), then ``items`` cursor steps (each
    records its item), the cursor saved at every advance; survives many lost workers."""

    name = "tests.chaos.sweep"
    max_attempts = 20
    step_save_every = 0.0

    def run(self) -> int:
        for _ in self.step("prepare"):
            record(-1)
        with self.step("items") as step:
            start = 0 if step.cursor is None else step.cursor + 1
            for item in range(start, self.params.items):
                time.sleep(self.params.sleep)
                record(item)
                step.advance(item)
        return self.params.items


class HopParams(BaseModel):
    n: int


class ChaosHop(tasks.Task[HopParams, HopParams]):
    """A chain's step: returns the next step's params (``n + 1``)."""

    name = "tests.chaos.hop"

    def run(self) -> HopParams:
        return HopParams(n=self.params.n + 1)
