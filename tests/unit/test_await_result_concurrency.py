"""Many concurrent ``await handle.await_result()`` share the loop fairly: they never occupy the
loop's default executor (what ``getaddrinfo`` and ``to_thread`` need), and each one's timeout
counts from its own ``await`` (issue 21, item 3)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.backends.memory import InMemoryBackend

AWAITS = 100


class Params(BaseModel):
    n: int


class NeverRunTask(tasks.Task[Params, int]):
    """Started but never drained: every wait for it stays pending."""

    name = "tests.await.never_run"

    def run(self) -> int:
        return self.params.n


class RecordingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A default executor that remembers every function it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted: list[str] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.submitted.append(getattr(fn, "__qualname__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


@pytest.mark.django_db(transaction=True)
def test_pending_awaits_leave_the_default_executor_to_getaddrinfo() -> None:
    handles = [NeverRunTask(Params(n=i)).start(backend=DatabaseBackend()) for i in range(AWAITS)]

    async def main() -> tuple[list[str], bool, float]:
        loop = asyncio.get_running_loop()
        executor = RecordingExecutor()
        loop.set_default_executor(executor)
        waits = [asyncio.ensure_future(handle.await_result()) for handle in handles]
        await asyncio.sleep(0.3)  # every wait has begun and polled at least once
        before_dns = list(executor.submitted)
        # Before the fix, the waits held every default-executor thread: this hung.
        began = loop.time()
        await asyncio.wait_for(loop.getaddrinfo("localhost", 80), 30)
        dns_seconds = loop.time() - began
        pending = not any(wait.done() for wait in waits)
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        return before_dns, pending, dns_seconds

    before_dns, still_pending, dns_seconds = asyncio.run(main())
    assert before_dns == []  # no wait ever used the shared default executor
    assert still_pending  # DNS answered while all the waits were still waiting
    assert dns_seconds < 1.0  # and was not delayed (it was blocked for seconds before the fix)


def test_each_timeout_counts_from_its_own_await() -> None:
    backend = InMemoryBackend()  # polls: a run nobody drains never finishes
    handles = [NeverRunTask(Params(n=i)).start(backend=backend) for i in range(AWAITS)]
    timeout = 2.0

    async def timed(handle: tasks.TaskHandle[int]) -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(TimeoutError, match=r"within 2(\.0)?s"):
            await handle.await_result(timeout=timeout)
        return loop.time() - began

    async def main() -> list[float]:
        return await asyncio.gather(*(timed(handle) for handle in handles))

    elapsed = asyncio.run(main())
    assert min(elapsed) >= timeout  # never early
    # Within 10 %: before the fix, a pool of a few threads served the waits in turns and the
    # last ones timed out after twice their timeout or more.
    assert max(elapsed) < timeout * 1.1
