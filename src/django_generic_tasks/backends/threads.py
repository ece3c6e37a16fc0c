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
from collections.abc import Sequence

from django.db import connections

from ..execution import execute
from ..status import TaskHandle
from .base import BaseBackend, EnqueueRequest

logger = logging.getLogger("django_generic_tasks")

_STOP = object()


class ThreadingBackend(BaseBackend):
    """Runs tasks on ``max_workers`` threads of this process; nothing survives a restart.

    Delays, ETAs, priorities and retries with backoff are honoured. Each thread closes its
    database connections after every task. At interpreter exit, runs that are ready or running
    are finished (up to ``drain_timeout`` seconds); runs still waiting for a later time are
    logged as dropped. Use ``DatabaseBackend`` when work must survive a crash.
    """

    supports_defer = True
    supports_priority = True
    supports_retries = True

    def __init__(self, *, max_workers: int = 4, drain_timeout: float = 30.0) -> None:
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError("max_workers must be an integer >= 1")
        self.max_workers = max_workers
        self.drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._pid = -1
        self._reset_state()
        _instances.add(self)

    def _reset_state(self) -> None:
        self._ready: queue.PriorityQueue[tuple[int, int, object]] = queue.PriorityQueue()
        self._later: list[tuple[float, int, EnqueueRequest]] = []
        self._later_changed = threading.Condition()
        self._idle = threading.Condition()
        self._unfinished = 0  # ready + running
        self._counter = itertools.count()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        """Queue the run (or schedule it for its ``run_after``); return immediately."""
        self._ensure_started()
        self._accept(request)
        return self.handle_for(request)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle]:
        """Queue many runs."""
        self._ensure_started()
        for request in requests:
            self._accept(request)
        return [self.handle_for(request) for request in requests]

    def _accept(self, request: EnqueueRequest) -> None:
        if request.run_after is not None and request.run_after.timestamp() > time.time():
            with self._later_changed:
                heapq.heappush(
                    self._later, (request.run_after.timestamp(), next(self._counter), request)
                )
                self._later_changed.notify()
        else:
            with self._idle:
                self._unfinished += 1
            self._ready.put((-request.priority, next(self._counter), request))

    def _ensure_started(self) -> None:
        if self._pid == os.getpid() and not self._closed:
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
            scheduler = threading.Thread(target=self._schedule, name="tasks-scheduler", daemon=True)
            scheduler.start()
            self._threads.append(scheduler)

    def _work(self) -> None:
        while True:
            _, _, item = self._ready.get()
            if item is _STOP:
                return
            assert isinstance(item, EnqueueRequest)
            try:
                self._run(item)
            except Exception:  # pragma: no cover - execute() reports task errors itself
                logger.exception(
                    "ThreadingBackend failed to run %s (run %s)", item.task_name, item.run_id
                )
            finally:
                connections.close_all()
                with self._idle:
                    self._unfinished -= 1
                    if self._unfinished == 0:
                        self._idle.notify_all()

    def _run(self, request: EnqueueRequest) -> None:
        outcome = execute(
            request.task_name,
            request.params_json,
            run_id=request.run_id,
            attempt=request.attempt,
            max_attempts=request.max_attempts,
        )
        if outcome.will_retry:
            self._accept(request.next_attempt(outcome.retry_at))

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
                heapq.heappop(self._later)
            with self._idle:
                self._unfinished += 1
            self._ready.put((-request.priority, next(self._counter), request))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is ready or running; ``False`` if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
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
            self._ready.put((1 << 30, next(self._counter), _STOP))
        self._threads = []


_instances: weakref.WeakSet[ThreadingBackend] = weakref.WeakSet()


@atexit.register
def _drain_at_exit() -> None:
    for backend in list(_instances):
        backend.close(wait=True)
