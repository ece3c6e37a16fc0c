"""Attempts of ``async def run()`` tasks awaited on one event loop, many at once.

A ``LoopExecutor`` owns one thread running an asyncio event loop. Attempts handed to it
(``submit``, from any thread) are awaited through their task's async chain
(``execute_async``), at most ``concurrency`` at once; the others wait in order. Nothing blocks
the loop on purpose:

- Database work of an attempt (Django's async ORM, model refs, progress writes, sync hooks and
  signal receivers) goes through thread-sensitive ``sync_to_async`` to one of ``db_threads``
  single-thread executors, chosen per attempt in turn: at most that many database connections
  however many attempts run, and one attempt's calls always on one thread, in order.
- A watchdog thread measures the loop's lag: when the loop has not turned for longer than
  ``stall_warning`` seconds, something in an async task blocks it (``time.sleep``,
  ``requests``, the sync ORM...: the task's bug). It logs a warning naming the attempt and the
  line it is stuck on, while it is stuck, and once more when the loop turns again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..support.compat import ThreadSensitivePool
from . import execute_async
from .attempts import requeue_lost_connections

if TYPE_CHECKING:
    from ..middleware import AsyncHandler
    from .attempts import Attempt, Outcome

__all__ = ["STALL_TICK", "Done", "LoopExecutor"]

STALL_TICK = 0.05
"""Seconds between two beats of the loop that the watchdog reads."""
TIDY_EVERY = 5.0
"""Seconds between two ``close_old_connections()`` on each database thread."""

Done = Callable[[Any, "Outcome | None", "BaseException | None", float], None]
"""Called on the loop thread when an attempt ended: ``(item, outcome, error, seconds)``;
``error`` is what ``execute_async`` raised instead of an outcome (e.g.
``CapacityExceededError``, ``AttemptInterrupted``), with ``outcome`` ``None``."""


class LoopExecutor:
    """One event loop on its own thread that awaits attempts, at most ``concurrency`` at once.

    ``done`` is called for each attempt submitted and started. ``requeue_lost``: a lost
    database connection raises ``AttemptInterrupted`` (the caller puts the attempt back) rather
    than failing the attempt, as the database worker's threads do. ``close_connections``: a
    database thread closes the connections an attempt opened once it ended (as
    ``ThreadingBackend``'s threads do after each task), rather than keeping them.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        done: Done,
        db_threads: int = 8,
        stall_warning: float = 0.5,
        requeue_lost: bool = False,
        close_connections: bool = False,
        name: str = "tasks-loop",
        logger: logging.Logger | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.stall_warning = stall_warning
        self.running = 0
        """Attempts being awaited now (read it from any thread)."""
        self.waiting: deque[tuple[Any, Attempt, AsyncHandler]] = deque()
        """Attempts submitted beyond ``concurrency``, in order (the loop thread's)."""
        self.stalls = 0
        """How many stalls the watchdog reported."""
        self._done = done
        self._requeue_lost = requeue_lost
        self._close_connections = close_connections
        self._name = name
        self._logger = logger or logging.getLogger("django_generic_tasks")
        self._db = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-db-{number}")
            for number in range(max(1, db_threads))
        ]
        self._pool = ThreadSensitivePool(list(self._db))
        self._next_db = itertools.cycle(range(len(self._db))).__next__
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"{name}-watchdog", daemon=True)
        self._ready = threading.Event()
        self._starting = threading.Lock()
        self._closed = threading.Event()
        self._idle = threading.Condition()
        self._beat = time.monotonic()
        self._stalled_since: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = True

    # -- any thread -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop and the watchdog (once); return once the loop runs."""
        with self._starting:
            if self._thread.ident is not None:
                return
            self._thread.start()
            self._ready.wait()
            self._watchdog.start()

    def submit(self, items: Sequence[tuple[Any, Attempt, AsyncHandler]]) -> None:
        """Await each ``(item, attempt, chain)`` on the loop, in order, as slots free (the
        loop starts on first use)."""
        if items:
            if self._thread.ident is None:
                self.start()
            self._loop.call_soon_threadsafe(self._accept, list(items))

    def stop(self, timeout: float = 5.0) -> list[Any]:
        """Start no more attempts; return the items of those that had not started (none
        when the loop is blocked for ``timeout`` seconds: they are left to their leases)."""
        self._accepting = False
        if self._thread.ident is None:  # never started
            return []
        future = asyncio.run_coroutine_threadsafe(self._stop_accepting(), self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            self._logger.warning("The event loop of async tasks is blocked; it was not stopped")
            return []

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no attempt runs; ``False`` when ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self.running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        """Stop the loop (attempts still running are abandoned) and the database threads
        (their connections closed)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread.ident is None:  # never started
            self._loop.close()
            for executor in self._db:
                executor.shutdown(wait=False)
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        for executor in self._db:
            executor.submit(_close_connections)
            executor.shutdown(wait=False)

    @property
    def lag(self) -> float:
        """Seconds since the loop last turned, beyond its beat (0 when it keeps up)."""
        return max(0.0, time.monotonic() - self._beat - STALL_TICK)

    # -- the loop thread --------------------------------------------------------------------

    def _serve(self) -> None:
        if self._requeue_lost:
            requeue_lost_connections()
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._tick)
        loop.call_later(TIDY_EVERY, self._tidy)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            self._closed.set()
            self._ready.set()

    def _tick(self) -> None:
        self._beat = now = time.monotonic()
        stalled = self._stalled_since
        if stalled is not None:  # the watchdog reported this stall: say that it ended
            self._stalled_since = None
            self._logger.warning(
                "The event loop of async tasks turned again after %.2fs.", now - stalled
            )
        if not self._closed.is_set():
            self._loop.call_later(STALL_TICK, self._tick)

    def _tidy(self) -> None:
        """Let each database thread drop a connection past ``CONN_MAX_AGE`` or broken."""
        for executor in self._db:
            executor.submit(_close_old_connections)
        self._loop.call_later(TIDY_EVERY, self._tidy)

    def _accept(self, items: list[tuple[Any, Attempt, AsyncHandler]]) -> None:
        if not self._accepting:  # stopping: stop() hands these back
            self.waiting.extend(items)
            return
        for entry in items:
            if self.running < self.concurrency:
                self._start(entry)
            else:
                self.waiting.append(entry)

    def _start(self, entry: tuple[Any, Attempt, AsyncHandler]) -> None:
        self.running += 1
        item, attempt, chain = entry
        task = self._loop.create_task(
            self._await(item, attempt, chain), name=f"{attempt.task_name} {attempt.run_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _await(self, item: Any, attempt: Attempt, chain: AsyncHandler) -> None:
        began = time.perf_counter()
        index = self._next_db()
        executor = self._db[index]
        outcome: Outcome | None = None
        error: BaseException | None = None
        try:
            async with self._pool.bind(index):
                outcome = await execute_async(attempt, chain)
        except asyncio.CancelledError:
            self._ended()
            raise
        except BaseException as exc:  # not a task failure: the caller decides
            error = exc
            executor.submit(_close_old_connections)  # e.g. its connection was lost
        if self._close_connections:
            executor.submit(_close_opened_connections)
        try:
            self._done(item, outcome, error, time.perf_counter() - began)
        except Exception:
            self._logger.exception("Run %s: its outcome could not be handed over", attempt.run_id)
        self._ended()

    def _ended(self) -> None:
        """One attempt ended (its outcome handed over): start the next waiting one."""
        self.running -= 1
        if self.waiting and self._accepting:
            self._start(self.waiting.popleft())
        elif not self.running:
            with self._idle:
                self._idle.notify_all()

    async def _stop_accepting(self) -> list[Any]:
        self._accepting = False
        unstarted = [item for item, _, _ in self.waiting]
        self.waiting.clear()
        return unstarted

    # -- the watchdog thread ----------------------------------------------------------------

    def _watch(self) -> None:
        every = min(0.1, self.stall_warning / 4)
        while not self._closed.wait(every):
            lag = self.lag
            if lag > self.stall_warning and self._stalled_since is None:
                self._stalled_since = self._beat
                self.stalls += 1
                self._warn(lag)

    def _warn(self, lag: float) -> None:
        try:
            current = asyncio.current_task(self._loop)
        except RuntimeError:  # pragma: no cover - a loop that just closed
            current = None
        frame = sys._current_frames().get(self._thread.ident or 0)
        where = "".join(traceback.format_stack(frame, limit=4)).rstrip() if frame else "?"
        self._logger.warning(
            "The event loop of async tasks has not turned for %.2fs (more than %gs): %s blocks "
            "it with a sync call (use await, or sync_to_async). It is at:\n%s",
            lag,
            self.stall_warning,
            f"task {current.get_name()}" if current is not None else "something",
            where,
        )


_opened = threading.local()


def _note_connection(**kwargs: object) -> None:
    _opened.connection = True


def _close_opened_connections() -> None:
    """On a database thread: close the connections opened since the last call, if any."""
    if getattr(_opened, "connection", False):
        _opened.connection = False
        _close_connections()


def _close_old_connections() -> None:
    from django.db import close_old_connections

    close_old_connections()


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()


def _listen_for_connections() -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(_note_connection, dispatch_uid="django_generic_tasks.eventloop")


_listen_for_connections()
