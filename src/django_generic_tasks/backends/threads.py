"""``ThreadingBackend``: runs tasks on a bounded pool of threads inside this process."""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import os
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

from ..core.enqueue import EnqueueRequest
from ..core.handles import TaskHandle
from ..core.status import TaskStatus
from ..exceptions import CapacityExceededError, EnqueueError, InvalidOptionError
from ..execution import Attempt, Outcome, execute, loop_chain
from ..execution.eventloop import LoopExecutor
from ..execution.retry import defer, settle
from .base import BaseBackend

logger = logging.getLogger("django_generic_tasks")

_STOP = object()
_STOP_RANK = 1 << 30  # after every real priority (-100..100): workers finish ready runs first


class ThreadingBackend(BaseBackend):
    """Runs tasks on ``max_workers`` threads of this process; nothing survives a restart.

    Delays, ETAs, priorities and retries with backoff are honoured. Each thread closes its
    database connections after every task. At interpreter exit, runs that are ready or running
    are finished (up to ``drain_timeout`` seconds); runs still waiting for a later time are
    logged as dropped. Use ``DatabaseBackend`` when work must survive a crash.

    Everything waits in memory, so ``start()`` is bounded: at most ``max_pending`` runs ready,
    running or due later (then ``EnqueueError``), delays of at most ``max_delay`` seconds
    (then ``InvalidOptionError``) and at most ``max_delayed_bytes`` of params held for runs
    due later (then ``EnqueueError``). Retries of accepted runs are never refused.

    Attempts of ``async def run()`` tasks are awaited on one event loop thread, up to
    ``async_concurrency`` at once, rather than each holding a thread in its own
    ``asyncio.run()`` (``0``: they take the threads, as sync tasks do).
    """

    supports_defer = True
    supports_priority = True
    supports_retries = True
    concurrency_limits = "process"
    rate_limits = "process"

    def __init__(
        self,
        *,
        max_workers: int = 4,
        drain_timeout: float = 30.0,
        max_pending: int = 10_000,
        max_delay: float = 86_400.0,
        max_delayed_bytes: int = 64 * 1024 * 1024,
        async_concurrency: int = 100,
    ) -> None:
        if type(max_workers) is not int or max_workers < 1:
            raise ValueError("max_workers must be an integer >= 1")
        if type(async_concurrency) is not int or async_concurrency < 0:
            raise ValueError("async_concurrency must be an integer >= 0")
        self.async_concurrency = async_concurrency
        for option, value in (
            ("max_pending", max_pending),
            ("max_delayed_bytes", max_delayed_bytes),
        ):
            if type(value) is not int or value < 1:
                raise ValueError(f"{option} must be an integer >= 1")
        if not isinstance(max_delay, int | float) or isinstance(max_delay, bool) or max_delay < 0:
            raise ValueError("max_delay must be a number of seconds >= 0")
        self.max_workers = max_workers
        self.max_pending = max_pending
        self.max_delay = float(max_delay)
        self.max_delayed_bytes = max_delayed_bytes
        self.drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._pid = -1
        self._reset_state()
        _instances.add(self)

    def _reset_state(self) -> None:
        # Ready runs wait in one FIFO per priority rank (-priority), with a heap of the ranks
        # that have runs waiting: first-in first-out within a priority at O(1), where one heap
        # of all runs paid a log(n) sift of tuple comparisons per run. Each ready run also puts
        # a token on a SimpleQueue, which is what idle workers block on (cheaper than a
        # PriorityQueue's Python-level condition).
        self._mutex = threading.Lock()  # guards _levels, _ranks and _unfinished
        self._idle = threading.Condition(self._mutex)
        self._levels: dict[int, deque[object]] = {}  # rank -> its ready runs, oldest first
        self._ranks: list[int] = []  # heap of the ranks whose FIFO is not empty
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._unfinished = 0  # ready + running
        self._later: list[tuple[float, int, EnqueueRequest]] = []
        self._later_bytes = 0  # params held by _later (guarded by _later_changed)
        self._later_changed = threading.Condition()
        self._counter = itertools.count()
        self._threads: list[threading.Thread] = []
        self._scheduler: threading.Thread | None = None
        self._loop: LoopExecutor | None = None
        self._closed = False

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Queue the run (or schedule it for its ``run_after``); return immediately."""
        if self._pid != _pid or self._closed:
            self._ensure_started()
        if self._unfinished + len(self._later) >= self.max_pending:
            self._refuse(1)
        if request.run_after is None:  # the common case, inlined: start() is the hot path
            self._push_ready(-request.priority, request)
            return TaskHandle(request.run_id, request.task_name, TaskStatus.READY, self)
        self._check_delayed([request])
        self._accept(request)
        return self.handle_for(request)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Queue many runs: all of them, or none (``EnqueueError``) when they do not fit."""
        self._ensure_started()
        if self._unfinished + len(self._later) + len(requests) > self.max_pending:
            self._refuse(len(requests))
        self._check_delayed(requests)
        for request in requests:
            self._accept(request)
        return [self.handle_for(request) for request in requests]

    def _refuse(self, count: int) -> None:
        pending = self._unfinished + len(self._later)
        logger.warning(
            "ThreadingBackend refused %d run(s): %d are pending (max_pending = %d).",
            count,
            pending,
            self.max_pending,
        )
        raise EnqueueError(
            f"ThreadingBackend is full: {pending} runs are waiting or running "
            f"(max_pending = {self.max_pending}); the run was not started."
        )

    def _check_delayed(self, requests: Sequence[EnqueueRequest]) -> None:
        """Refuse delays over ``max_delay`` and params over ``max_delayed_bytes``."""
        latest = time.time() + self.max_delay
        size = 0
        for request in requests:
            if request.run_after is None:
                continue
            if request.run_after.timestamp() > latest:
                raise InvalidOptionError(
                    f"ThreadingBackend holds runs in memory for at most {self.max_delay:g}s "
                    "(max_delay); use DatabaseBackend for runs due later."
                )
            size += len(request.params_json)
        if size and self._later_bytes + size > self.max_delayed_bytes:
            logger.warning(
                "ThreadingBackend refused run(s) due later: their params would exceed "
                "max_delayed_bytes = %d.",
                self.max_delayed_bytes,
            )
            raise EnqueueError(
                f"ThreadingBackend holds {self._later_bytes} bytes of params for runs due later "
                f"(max_delayed_bytes = {self.max_delayed_bytes}); the run was not started."
            )

    def _accept(self, request: EnqueueRequest) -> None:
        if request.run_after is not None and request.run_after.timestamp() > time.time():
            if self._scheduler is None:
                self._start_scheduler()
            with self._later_changed:
                heapq.heappush(
                    self._later, (request.run_after.timestamp(), next(self._counter), request)
                )
                self._later_bytes += len(request.params_json)
                self._later_changed.notify()
        else:
            self._push_ready(-request.priority, request)

    def requeue(self, request: EnqueueRequest) -> None:
        """Queue a run's next attempt for its ``run_after`` (retry seam hook)."""
        self._accept(request)

    def _push_ready(self, rank: int, item: object) -> None:
        with self._mutex:
            level = self._levels.get(rank)
            if level is None:
                level = self._levels[rank] = deque()
            if not level:
                heapq.heappush(self._ranks, rank)
            level.append(item)
            if item is not _STOP:
                self._unfinished += 1
        self._tokens.put(None)

    def _pop_ready(self) -> object:
        """The oldest run of the highest priority (call with ``_mutex`` held)."""
        level = self._levels[self._ranks[0]]
        item = level.popleft()
        if not level:
            heapq.heappop(self._ranks)
        return item

    def _ensure_started(self) -> None:
        if self._pid == _pid and not self._closed:
            return
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: start afresh
                self._reset_state()
                self._pid = os.getpid()
            if self._closed:
                raise RuntimeError("ThreadingBackend is shut down; it accepts no more tasks.")
            if self._threads:
                return
            for number in range(self.max_workers):
                thread = threading.Thread(
                    target=self._work, name=f"tasks-worker-{number}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _start_scheduler(self) -> None:
        """Start the thread that moves runs due later to the ready heap (on first need)."""
        with self._lock:
            if self._scheduler is None:
                scheduler = threading.Thread(
                    target=self._schedule, name="tasks-scheduler", daemon=True
                )
                scheduler.start()
                self._scheduler = scheduler

    def _work(self) -> None:
        tokens, mutex, idle, pop_ready = self._tokens, self._mutex, self._idle, self._pop_ready
        backend_name = self.name
        on_loop = self.async_concurrency > 0
        _opened.connection = False  # set: getattr() with a default on a missing one is slow
        tokens.get()
        with mutex:
            item = pop_ready()
        while item is not _STOP:
            assert isinstance(item, EnqueueRequest)
            ended = 1  # 0: handed to the event loop, which counts it finished
            try:
                chain = loop_chain(item.task_name, backend_name) if on_loop else None
                if chain is not None:
                    self._event_loop().submit([(item, Attempt.of(item, backend_name), chain)])
                    ended = 0
                else:
                    outcome = execute(Attempt.of(item, backend_name))
                    if outcome.decision.retry:  # a final one: nothing to record here
                        settle(self, item, outcome)
            except CapacityExceededError as exc:  # refused before it ran: try again later
                defer(self, item, exc)
            except BaseException:  # e.g. SystemExit from a task: log it, keep the worker
                logger.exception(
                    "Task %s (run %s) raised outside the task's error handling; the worker "
                    "thread carries on.",
                    item.task_name,
                    item.run_id,
                    extra={"task_name": item.task_name, "run_id": item.run_id},
                )
            finally:
                if _opened.connection:
                    _opened.connection = False
                    connections.close_all()
            # Under load the next token is already there: count this run finished and take
            # the next one under a single acquisition of the mutex.
            has_next = not tokens.empty()
            if has_next:
                try:
                    tokens.get(False)
                except queue.Empty:  # another worker took it in between
                    has_next = False
            with mutex:
                self._unfinished -= ended
                if self._unfinished == 0:
                    idle.notify_all()
                if has_next:
                    item = pop_ready()
                    continue
            tokens.get()
            with mutex:
                item = pop_ready()

    def _event_loop(self) -> LoopExecutor:
        """The event loop of async attempts (started on first use)."""
        loop = self._loop
        if loop is None:
            with self._lock:
                loop = self._loop
                if loop is None:
                    loop = LoopExecutor(
                        concurrency=self.async_concurrency,
                        done=self._awaited,
                        db_threads=self.max_workers,
                        close_connections=True,
                        name="tasks-threading-loop",
                    )
                    self._loop = loop
        return loop

    def _awaited(
        self, item: EnqueueRequest, outcome: Outcome | None, error: BaseException | None, _: float
    ) -> None:
        """An async attempt ended (on the loop thread): settle it as a thread would."""
        try:
            if isinstance(error, CapacityExceededError):
                defer(self, item, error)
            elif error is not None:
                logger.error(
                    "Task %s (run %s) raised outside the task's error handling.",
                    item.task_name,
                    item.run_id,
                    exc_info=error,
                    extra={"task_name": item.task_name, "run_id": item.run_id},
                )
            elif outcome is not None and outcome.decision.retry:
                settle(self, item, outcome)
        finally:
            with self._mutex:
                self._unfinished -= 1
                if self._unfinished == 0:
                    self._idle.notify_all()

    def _schedule(self) -> None:
        while True:
            with self._later_changed:
                while not self._later and not self._closed:
                    self._later_changed.wait()
                if self._closed:
                    return
                due, _, request = self._later[0]
                wait = due - time.time()
                if wait > 0:
                    self._later_changed.wait(wait)
                    continue
                # pushed before it leaves _later, so wait_idle never sees it in neither place
                self._push_ready(-request.priority, request)
                heapq.heappop(self._later)
                self._later_bytes -= len(request.params_json)

    def wait_idle(self, timeout: float | None = None, *, include_scheduled: bool = False) -> bool:
        """Block until no run is ready or running; ``False`` if ``timeout`` passed first.

        With ``include_scheduled``, also wait for runs due later (delays, ETAs, retries).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unfinished or (include_scheduled and self._later):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                step = remaining
                if include_scheduled and not self._unfinished:  # due runs are not announced
                    step = 0.01 if remaining is None else min(0.01, remaining)
                self._idle.wait(step)
        return True

    def close(self, wait: bool = True) -> None:
        """Stop accepting tasks; finish ready and running ones first when ``wait``."""
        if self._pid != os.getpid() or self._closed:
            return
        if wait and not self.wait_idle(self.drain_timeout):
            logger.warning(
                "ThreadingBackend: %d task run(s) still unfinished after %gs at shutdown.",
                self._unfinished,
                self.drain_timeout,
            )
        with self._later_changed:
            self._closed = True
            dropped = len(self._later)
            self._later_changed.notify_all()
        if dropped:
            logger.warning(
                "ThreadingBackend: %d delayed task run(s) were not due yet and are dropped at "
                "shutdown; use DatabaseBackend for work that must survive a restart.",
                dropped,
            )
        for _ in range(self.max_workers):
            self._push_ready(_STOP_RANK, _STOP)
        self._threads = []
        if self._loop is not None:
            self._loop.close()


_instances: weakref.WeakSet[ThreadingBackend] = weakref.WeakSet()
_opened = threading.local()


def _note_connection(**kwargs: object) -> None:
    # A task can only leave a connection open by opening one in its thread (the previous
    # task's were closed), so workers call close_all() only after this ran in their thread.
    _opened.connection = True


connection_created.connect(_note_connection, dispatch_uid="django_generic_tasks.threads")


@atexit.register
def _drain_at_exit() -> None:
    for backend in list(_instances):
        backend.close(wait=True)


_pid = os.getpid()  # kept current by _after_fork_in_child: no system call per start()


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()
    # a lock held by another thread at fork time would stay locked forever in the child
    for backend in list(_instances):
        backend._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
