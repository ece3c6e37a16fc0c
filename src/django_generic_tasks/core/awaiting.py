"""Waiting for a run to finish: the pacing both waits share, and ``await
handle.await_result()`` from async code.

The wait itself is asynchronous (``asyncio.sleep`` between polls, an ``asyncio.Event`` woken by
the backend's finish notices); only the short blocking steps, reading the run and subscribing
to notices, run on threads, and on this module's own small pool, never on the loop's shared
default executor: a thousand waiters cannot starve ``loop.getaddrinfo()`` or
``asyncio.to_thread()`` calls of the rest of the program, and each waiter's deadline starts at
its ``await``, not when a pool thread becomes free.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import ResultNotAvailableError

if TYPE_CHECKING:
    from ..backends.base import Backend
    from .handles import TaskHandle
    from .results import FinishNotices

POLL_FIRST = 0.01
"""Seconds between the first two polls of a backend without finish notices."""
POLL_GROWTH = 1.5
POLL_MAX = 1.0
"""The longest pause between two polls."""
NOTICE_RECHECK = 10.0
"""With finish notices, the row is read again after this many quiet seconds anyway: a
notice lost with a dropped connection delays a waiter by this much at most."""

READER_THREADS = 4
"""Threads reading runs for all the awaits of the process: each read is one short query."""

_reader: concurrent.futures.ThreadPoolExecutor | None = None
_reader_lock = threading.Lock()


def reader_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The process's pool for the blocking steps of ``await_result()`` (created on first use)."""
    global _reader
    with _reader_lock:
        if _reader is None:
            _reader = concurrent.futures.ThreadPoolExecutor(
                READER_THREADS, thread_name_prefix="tasks-await"
            )
        return _reader


def _closing_connections[T](function: Callable[..., T], *args: Any) -> T:
    from django.db import connections

    try:
        return function(*args)
    finally:
        # A pool thread may stay idle for a long time: it keeps no connection open meanwhile
        # (a test database could not be dropped, a server's connection slots would be held).
        connections.close_all()


async def _on_reader[T](function: Callable[..., T], *args: Any) -> T:
    future = reader_executor().submit(_closing_connections, function, *args)
    return await asyncio.wrap_future(future)


class _LoopEvent(threading.Event):
    """A ``threading.Event`` (what finish notices set, from their listener thread) that also
    wakes an ``asyncio.Event`` on the waiting loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.woken = asyncio.Event()

    def set(self) -> None:
        """Set the event, and wake the loop's waiter."""
        super().set()
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(self.woken.set)

    def clear(self) -> None:
        """Clear both (called on the loop's thread)."""
        super().clear()
        self.woken.clear()


async def await_finished(handle: TaskHandle[Any], timeout: float | None) -> None:
    """Return once ``handle``'s run is finished (``handle`` refreshed); ``TimeoutError`` from
    ``results`` when ``timeout`` seconds pass first, counted from this call."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    backend = handle.backend
    if backend is None or not backend.supports_results:
        name = type(backend).__name__ if backend is not None else "this backend"
        raise ResultNotAvailableError(
            f"{name} does not keep task results; cannot wait for run {handle.id}."
        )
    try:
        async with asyncio.timeout_at(deadline):
            await _poll(handle, backend, loop)
    except TimeoutError:
        if deadline is not None and loop.time() >= deadline:
            raise timed_out(handle, timeout) from None
        raise


async def _poll(handle: TaskHandle[Any], backend: Backend, loop: asyncio.AbstractEventLoop) -> None:
    notices: FinishNotices | None = backend.finish_notices()
    event = await _subscribe(notices, handle.id, loop) if notices is not None else None
    try:
        pause = POLL_FIRST
        while True:
            if event is not None:
                event.clear()  # before reading: a notice from now on wakes the next wait
            if await _read(handle) and handle.status.is_finished:
                return
            if event is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(NOTICE_RECHECK):
                        await event.woken.wait()
            else:
                await asyncio.sleep(pause)
                pause = min(pause * POLL_GROWTH, POLL_MAX)
    finally:
        if event is not None and notices is not None:
            notices.unsubscribe(handle.id, event)


async def _subscribe(
    notices: FinishNotices, run_id: str, loop: asyncio.AbstractEventLoop
) -> _LoopEvent | None:
    event = _LoopEvent(loop)
    future = reader_executor().submit(_closing_connections, notices.subscribe, run_id, event)
    try:
        subscribed = await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        # The subscription may still complete on its thread: undo it then, or it would leak.
        future.add_done_callback(lambda _: notices.unsubscribe(run_id, event))
        raise
    return event if subscribed is not None else None


async def _read(handle: TaskHandle[Any]) -> bool:
    """Read the run on a pool thread into a copy, then update ``handle`` on the loop's thread
    (a read still in flight when the ``await`` gives up never changes ``handle`` later)."""
    copy = handle._unread_copy()
    if not await _on_reader(refresh_unless_locked, copy):
        return False
    handle.status, handle.result, handle.error = copy.status, copy.result, copy.error
    handle.attempts, handle.progress = copy.attempts, copy.progress
    return True


def timed_out(handle: TaskHandle[Any], timeout: float | None) -> TimeoutError:
    """The ``TimeoutError`` of a wait for ``handle`` that gave up after ``timeout``."""
    return TimeoutError(
        f"Run {handle.id} of {handle.name} did not finish within {timeout:g}s "
        f"(it is {handle.status.value})."
    )


def refresh_unless_locked(handle: TaskHandle[Any]) -> bool:
    """Read the run again; ``False`` when SQLite said its table is locked (a writer holds
    it: read again on the next turn)."""
    from django.db import OperationalError

    try:
        handle.refresh()
    except OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    return True
