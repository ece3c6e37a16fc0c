"""``ThreadingBackend`` with async tasks: awaited on one event loop beside its threads, many at
once however few the threads, retried and timed out as on a thread; ``async_concurrency=0``
keeps them on the threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import TaskStatus
from django_generic_tasks.backends import ThreadingBackend
from django_generic_tasks.signals import task_finished

state: dict[str, Any] = {}
lock = threading.Lock()


class Params(BaseModel):
    n: int = 0
    seconds: float = 0.2


class Wait(tasks.Task[Params]):
    """Awaits a sleep; counts how many run at once and on which threads."""

    name = "tests.threading_async.wait"

    async def run(self) -> int:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            state["threads"].add(threading.current_thread().name)
        try:
            await asyncio.sleep(self.params.seconds)
        finally:
            with lock:
                state["now"] -= 1
                state["finished"] += 1
        return self.params.n


class LimitedWait(Wait):
    """``Wait`` with at most 3 runs at once."""

    name = "tests.threading_async.limited_wait"
    concurrency_limit = 3


class FailsOnce(tasks.Task[Params]):
    """Fails its first attempt, then succeeds."""

    name = "tests.threading_async.fails_once"
    max_attempts = 2
    backoff_base = 0

    async def run(self) -> int:
        with lock:
            state["attempts"] += 1
            first = state["attempts"] == 1
        if first:
            raise RuntimeError("first attempt")
        return self.params.n


class TooSlow(tasks.Task[Params]):
    """Awaits past its timeout."""

    name = "tests.threading_async.too_slow"
    timeout = 0.1

    async def run(self) -> int:
        await asyncio.sleep(self.params.seconds)
        return self.params.n


@pytest.fixture(autouse=True)
def _state() -> None:
    state.clear()
    state.update(now=0, peak=0, threads=set(), attempts=0, finished=0, outcomes=[])


@pytest.fixture(autouse=True)
def _outcomes() -> Iterator[None]:
    """What ``task_finished`` says of each attempt's final outcome."""

    def receive(sender: Any, task: Any, outcome: Any, **kwargs: Any) -> None:
        if outcome.decision.retry:
            return
        if outcome.error is not None:
            state.setdefault("errors", []).append(
                (outcome.task_name, outcome.status, outcome.error.type)
            )
        else:
            state["outcomes"].append((outcome.task_name, outcome.status))

    task_finished.connect(receive, weak=False)
    yield
    task_finished.disconnect(receive)


@pytest.fixture
def backend() -> Iterator[ThreadingBackend]:
    backend = ThreadingBackend(max_workers=1, drain_timeout=10, async_concurrency=40)
    yield backend
    backend.close()


def test_async_runs_are_awaited_many_at_once_even_on_one_thread(
    backend: ThreadingBackend,
) -> None:
    Wait.start_many([{"n": n} for n in range(100)], backend=backend)
    assert backend.wait_idle(30)
    assert state["peak"] == 40  # async_concurrency, with max_workers=1
    assert state["threads"] == {"tasks-threading-loop"}
    assert state["finished"] == 100


def test_an_async_run_is_retried_per_its_policy(backend: ThreadingBackend) -> None:
    FailsOnce(Params(n=7)).start(backend=backend)
    assert backend.wait_idle(30, include_scheduled=True)
    assert state["attempts"] == 2
    assert state["outcomes"] == [("tests.threading_async.fails_once", TaskStatus.SUCCEEDED)]


def test_an_async_run_past_its_timeout_fails(backend: ThreadingBackend) -> None:
    TooSlow(Params(seconds=5)).start(backend=backend)
    assert backend.wait_idle(10)
    [(name, status, error)] = state["errors"]
    assert (name, status) == ("tests.threading_async.too_slow", TaskStatus.FAILED)
    assert error.endswith("TaskTimeoutError")


def test_with_async_concurrency_zero_async_runs_take_the_threads() -> None:
    backend = ThreadingBackend(max_workers=2, drain_timeout=10, async_concurrency=0)
    try:
        Wait.start_many([{"n": n, "seconds": 0.05} for n in range(6)], backend=backend)
        assert backend.wait_idle(30)
    finally:
        backend.close()
    assert state["peak"] <= 2
    assert "tasks-threading-loop" not in state["threads"]


def test_async_concurrency_is_validated() -> None:
    with pytest.raises(ValueError, match="async_concurrency"):
        ThreadingBackend(async_concurrency=-1)


def test_a_concurrency_limit_holds_for_async_runs_awaited_on_the_loop(
    backend: ThreadingBackend,
) -> None:
    LimitedWait.start_many([{"n": n, "seconds": 0.05} for n in range(12)], backend=backend)
    assert backend.wait_idle(30, include_scheduled=True)
    assert state["finished"] == 12
    assert state["peak"] == 3  # the limit, though async_concurrency is 40
    assert state["threads"] == {"tasks-threading-loop"}  # the limits kept them on the loop
