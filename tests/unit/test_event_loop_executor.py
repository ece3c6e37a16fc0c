"""``LoopExecutor`` (attempts awaited on one event loop) and the async chain, without a
database worker: the concurrency cap and order, handing back unstarted attempts, the stall
watchdog, middleware without an async path, the worker's claim sizing."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.execution import Attempt, loop_chain
from django_generic_tasks.execution.eventloop import LoopExecutor
from django_generic_tasks.middleware import AttemptMiddleware, _has_async_path
from django_generic_tasks.worker.asyncruns import AsyncRuns
from django_generic_tasks.worker.options import WorkerOptions

BACKEND = "tests.loop"
running = {"now": 0, "peak": 0, "order": []}


class Params(BaseModel):
    n: int
    seconds: float = 0.05


class Wait(tasks.Task[Params]):
    """Awaits a sleep; notes the order it started in and how many ran at once."""

    name = "tests.loop.wait"

    async def run(self) -> int:
        running["order"].append(self.params.n)
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        try:
            await asyncio.sleep(self.params.seconds)
        finally:
            running["now"] -= 1
        return self.params.n


class Blocks(tasks.Task[Params]):
    """Blocks the loop with a sync sleep (the user's bug)."""

    name = "tests.loop.blocks"

    async def run(self) -> int:
        time.sleep(self.params.seconds)
        return self.params.n


class Plain(tasks.Task[Params]):
    """A sync task: no loop chain."""

    name = "tests.loop.plain"

    def run(self) -> int:
        return self.params.n


def attempt(task: type[tasks.Task[Any]], n: int, seconds: float = 0.05) -> Attempt:
    return Attempt(
        task_name=task.name,
        params={"n": n, "seconds": seconds},
        run_id=f"run-{n}",
        attempt=1,
        backend=BACKEND,
    )


class Collected:
    """The ``done`` callback: outcomes by item, and an event once ``expected`` arrived."""

    def __init__(self, expected: int) -> None:
        self.outcomes: dict[Any, Any] = {}
        self.errors: dict[Any, BaseException] = {}
        self.expected = expected
        self.all_done = threading.Event()

    def __call__(self, item: Any, outcome: Any, error: Any, seconds: float) -> None:
        if error is not None:
            self.errors[item] = error
        else:
            self.outcomes[item] = outcome
        if len(self.outcomes) + len(self.errors) >= self.expected:
            self.all_done.set()


@pytest.fixture(autouse=True)
def _reset() -> None:
    running.update(now=0, peak=0, order=[])


def submit(executor: LoopExecutor, task: type[tasks.Task[Any]], numbers: range, **kw: Any) -> None:
    entries = []
    for n in numbers:
        chain = loop_chain(task.name, BACKEND)
        assert chain is not None
        entries.append((n, attempt(task, n, **kw), chain))
    executor.submit(entries)


def test_at_most_concurrency_attempts_run_at_once_and_the_others_start_in_order() -> None:
    done = Collected(50)
    executor = LoopExecutor(concurrency=10, done=done, db_threads=1)
    executor.start()
    try:
        submit(executor, Wait, range(50))
        assert done.all_done.wait(20)
        assert executor.wait_idle(5)
    finally:
        executor.close()
    assert running["peak"] == 10
    assert running["order"] == list(range(50))
    assert {o.status for o in done.outcomes.values()} == {TaskStatus.SUCCEEDED}
    assert sorted(o.result for o in done.outcomes.values()) == list(range(50))


def test_stop_hands_back_the_attempts_that_had_not_started() -> None:
    done = Collected(5)
    executor = LoopExecutor(concurrency=5, done=done, db_threads=1)
    executor.start()
    try:
        submit(executor, Wait, range(20), seconds=0.3)
        deadline = time.monotonic() + 10
        while executor.running < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        unstarted = executor.stop()
        assert sorted(unstarted) == list(range(5, 20))
        assert executor.wait_idle(10)
        assert done.all_done.wait(5)
    finally:
        executor.close()
    assert sorted(done.outcomes) == list(range(5))


def test_the_watchdog_reports_a_stall_while_it_lasts_and_once_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done = Collected(1)
    executor = LoopExecutor(concurrency=5, done=done, db_threads=1, stall_warning=0.1)
    executor.start()
    try:
        with caplog.at_level("WARNING", logger="django_generic_tasks"):
            submit(executor, Blocks, range(1), seconds=0.5)
            assert done.all_done.wait(10)
            time.sleep(0.3)  # the loop turns again: that is logged too
    finally:
        executor.close()
    assert executor.stalls == 1
    assert "task tests.loop.blocks run-0 blocks it" in caplog.text
    assert "time.sleep(self.params.seconds)" in caplog.text
    assert "turned again after" in caplog.text


def test_a_loop_that_keeps_turning_is_never_reported() -> None:
    done = Collected(30)
    # Generous: on a loaded machine the loop thread may wait a while for a core; a stall is a
    # loop that does not turn for this long.
    executor = LoopExecutor(concurrency=30, done=done, db_threads=1, stall_warning=2.0)
    executor.start()
    try:
        submit(executor, Wait, range(30), seconds=0.3)
        assert done.all_done.wait(10)
    finally:
        executor.close()
    assert executor.stalls == 0


def test_sync_tasks_and_unknown_ones_have_no_loop_chain() -> None:
    assert loop_chain(Plain.name, BACKEND) is None
    assert loop_chain("tests.loop.nobody", BACKEND) is None
    assert loop_chain(Wait.name, BACKEND) is not None


class OnlySync(AttemptMiddleware):
    def __call__(self, task: Any, attempt: Any) -> Any:
        return self.next(task, attempt)


class Both(OnlySync):
    async def __acall__(self, task: Any, attempt: Any) -> Any:
        return await self.next(task, attempt)


class SyncAgain(Both):
    def __call__(self, task: Any, attempt: Any) -> Any:
        return self.next(task, attempt)


class NotASubclass:
    def __init__(self, next: Any, chain: Any) -> None:
        self.next = next

    def __call__(self, task: Any, attempt: Any) -> Any:
        return self.next(task, attempt)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (AttemptMiddleware, True),
        (OnlySync, False),
        (Both, True),
        (SyncAgain, False),  # a sync override below the async one hides it
        (NotASubclass, False),
    ],
)
def test_which_middleware_have_an_async_path(cls: type, expected: bool) -> None:
    assert _has_async_path(cls) is expected


def runs_for(share: float, **options: Any) -> AsyncRuns:
    runs = AsyncRuns(WorkerOptions(**options), BACKEND, lambda *a: None)
    runs.share = share
    return runs


def test_a_pure_async_stream_claims_up_to_the_async_room() -> None:
    runs = runs_for(1.0, async_concurrency=500, batch=500)
    assert runs.take(room=8, least=2, cap=4, in_flight=0) == (500, True)
    assert runs.take(room=8, least=2, cap=4, in_flight=450) == (50, False)  # < a quarter


def test_a_mixed_stream_claims_what_fills_the_side_that_fills_first() -> None:
    runs = runs_for(0.5, async_concurrency=100, batch=100)
    # 8 free threads at half async: 16 runs, about 8 of each.
    assert runs.take(room=8, least=2, cap=8, in_flight=0)[0] == 16
    # The threads are over-full (a wrong guess): no claim until they drain.
    assert runs.take(room=-3, least=2, cap=8, in_flight=0)[0] == 0


def test_the_mix_is_learnt_from_claims_and_snaps_for_pure_streams() -> None:
    from django_generic_tasks.store import ClaimedRun

    def claimed(name: str) -> ClaimedRun:
        return ClaimedRun(
            id="r", db_id="r", task_name=name, params="{}", attempt=1, max_attempts=1, priority=0
        )

    runs = runs_for(0.5, async_concurrency=10)
    for _ in range(8):
        on_threads, on_loop = runs.route([claimed(Wait.name)] * 4)
        assert (len(on_threads), len(on_loop)) == (0, 4)
    assert runs.share == 1.0
    runs.route([claimed(Plain.name)] * 2 + [claimed(Wait.name)] * 2)
    assert runs.share == 0.75


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"async_concurrency": -1}, "async_concurrency must be at least 0"),
        ({"async_concurrency": True}, "async_concurrency must be at least 0"),
        ({"async_db_threads": 0}, "async_db_threads must be at least 1"),
        ({"async_stall_warning": 0}, "async_stall_warning must be a positive number"),
        ({"async_concurrency": 2_000_000}, "async_concurrency must be at most"),
    ],
)
def test_async_worker_options_are_validated(options: dict[str, Any], message: str) -> None:
    from django_generic_tasks.worker.options import WorkerOptionError

    with pytest.raises(WorkerOptionError, match=message):
        WorkerOptions(**options)


def test_asgirefs_names_of_the_fast_thread_sensitive_path_still_exist() -> None:
    """``support.compat.ThreadSensitivePool`` sets two undocumented names of asgiref: the day
    they go, this fails (the pool then falls back to the public, slower path)."""
    from django_generic_tasks.support.compat import FAST_THREAD_SENSITIVE

    assert FAST_THREAD_SENSITIVE


@pytest.mark.parametrize("fast", [True, False])
def test_a_bound_runs_thread_sensitive_calls_go_to_its_executor(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import sync_to_async

    from django_generic_tasks.support import compat

    monkeypatch.setattr(compat, "FAST_THREAD_SENSITIVE", fast)
    executors = [ThreadPoolExecutor(1, thread_name_prefix=f"pool-{n}") for n in range(2)]
    pool = compat.ThreadSensitivePool(list(executors))

    async def one(index: int) -> list[str]:
        async with pool.bind(index):
            names = []
            for _ in range(3):
                names.append(await sync_to_async(lambda: threading.current_thread().name)())
                await asyncio.sleep(0)
            return names

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(one(0), one(1), one(0)))

    try:
        first, second, third = asyncio.run(both())
    finally:
        for executor in executors:
            executor.shutdown()
    if fast or compat.EXECUTOR_CONTEXTS:
        assert {name.split("_")[0] for name in first + third} == {"pool-0"}
        assert {name.split("_")[0] for name in second} == {"pool-1"}
    else:
        assert len(set(first + second + third)) == 1  # asgiref's one shared thread
