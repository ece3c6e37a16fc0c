"""The worker: claim runs in batches, run them on threads, write outcomes back in batches.

The main thread owns one persistent connection for claims and completions; a heartbeat thread
extends leases and requeues runs whose worker died; on PostgreSQL a listener thread wakes the
main thread on ``NOTIFY``. Each run goes through ``execution.execute()`` on a thread, or, for
``async def run()`` tasks, ``execution.execute_async()`` on the worker's event loop
(``asyncruns``).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..core.registry import registry
from ..core.status import TaskStatus
from ..exceptions import AttemptInterrupted, CapacityExceededError
from ..execution import Outcome, error_info, execute, loop_chain, requeue_lost_connections
from ..execution.cancellation import stop_watching as stop_watching_cancels
from ..execution.cancellation import watch as watch_cancels
from ..execution.progress import register_sink, unregister_sink
from ..execution.retry import REFUSED_RETRY_DELAY
from ..execution.steps import register_step_store, unregister_step_store
from ..execution.timeouts import join_timed_out_attempts
from ..store import ClaimedRun, Finished, for_connection
from ..store.steps import DatabaseSteps
from .asyncruns import AsyncRuns, attempt_of
from .connection import close_quietly, connection_of, is_db_error, queue_of, reset_queries
from .handoff import STREAK, finish_and_claim, finish_and_yield, hands_off
from .options import WorkerOptions
from .outcomes import OutcomeWriter
from .startup import wait_for_migrations

if TYPE_CHECKING:
    from ..backends.database import DatabaseBackend

logger = logging.getLogger("django_generic_tasks.worker")

INTERRUPTED_RETRY_DELAY = timedelta(seconds=1)
"""How long a run whose attempt lost its database connection waits before it is due again
(counted from when the worker can write it back: the database is there again)."""


class Worker:
    """Runs task runs stored by ``DatabaseBackend``; ``run()`` blocks until stopped."""

    def __init__(
        self, options: WorkerOptions | None = None, backend: DatabaseBackend | None = None
    ) -> None:
        self.options = options or WorkerOptions()  # validated when built
        if backend is None:
            from ..backends.database import DatabaseBackend

            backend = DatabaseBackend(self.options.database)
        self.backend = backend  # whose runs these are: its name, progress sink, timeouts
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.processed = 0
        self._claimed_total = 0
        self._in_flight = 0
        self._async_in_flight = 0
        self._async: AsyncRuns | None = None
        self.started_at = datetime.now(UTC)
        self._lock = threading.Lock()
        self._outcomes = OutcomeWriter(self.options.database, self.id, self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._halt = threading.Event()
        self._work: queue.SimpleQueue[ClaimedRun | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._signals = 0
        self._limit = self.options.concurrency
        self._refill_at = self.options.concurrency
        self._avg_seconds = 0.0
        self._starved = False
        self._progress = backend.progress_sink()
        self._limited = False
        self._steps = DatabaseSteps(self.options.database, self._stop)

    # -- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; finish in-flight runs within the grace period, release the rest."""
        self._stop.set()
        self._wake.set()

    def run(self, install_signals: bool = True) -> int:
        """Work until stopped (or idle with ``once``, or ``max_tasks`` reached); return count."""
        options = self.options
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        wait_for_migrations(options.database, self._stop)
        self._start_threads()
        scheduler = _start_scheduler(options.database) if options.scheduler else None
        logger.info(
            "Worker %s started: queues=%s concurrency=%d async-concurrency=%d batch<=%d",
            self.id,
            (",".join(options.queues) or "*") + "".join(f" -{q}" for q in options.exclude_queues),
            options.concurrency,
            options.async_concurrency,
            options.batch,
        )
        try:
            self._loop()
        finally:
            if scheduler is not None:
                scheduler.stop()
            self._shutdown()
        logger.info("Worker %s stopped after %d runs", self.id, self.processed)
        return self.processed

    # -- main loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        options = self.options
        backoff = 0.1
        while not self._stop.is_set():
            # Cleared before looking, so a wake-up that arrives meanwhile is not lost.
            self._wake.clear()
            try:
                self.processed += self._outcomes.flush()
                if options.max_tasks is not None and self.processed >= options.max_tasks:
                    return
                claimed = self._claim()
                backoff = 0.1
            except Exception as exc:
                if not is_db_error(exc):
                    raise
                logger.warning(
                    "Database unavailable (%s); reconnecting in %.1fs",
                    str(exc).strip() or type(exc).__name__,
                    backoff,
                )
                close_quietly(self.options.database)
                self._wake.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            with self._lock:
                in_flight = self._in_flight + self._async_in_flight
            # The queue ran dry: with LISTEN, a new run's NOTIFY sets the wake-up (cleared
            # before the claim), so claiming again at once would only add a round trip beside
            # the hand-off of the runs just claimed. Polling databases look again at once.
            if claimed and not (self._starved and self._listener is not None):
                continue
            if options.once and in_flight == 0 and not self._outcomes.waiting():
                return
            # Through the limits, a starved claim found no free slot: the next one is freed by
            # a run finishing, which wakes its own worker, so polling sooner only queues
            # behind the flow lock.
            idle = in_flight == 0 or (self._limited and self._starved)
            timeout = options.interval if idle else min(0.05, options.interval)
            self._wake.wait(timeout)
            reset_queries()

    def _batch_limit(self) -> int:
        """How many runs to hold beyond the busy threads: ``prefetch`` seconds of work."""
        options = self.options
        if self._avg_seconds <= 0:
            return options.concurrency
        per_second = options.concurrency / self._avg_seconds
        return max(options.concurrency, min(options.batch, int(per_second * options.prefetch)))

    def _claim(self) -> int:
        options = self.options
        limit = self._batch_limit()
        with self._lock:
            in_flight, async_in_flight = self._in_flight, self._async_in_flight
        room = options.concurrency + limit - in_flight
        least = max(1, limit // 2)
        async_runs = self._async
        if async_runs is None or not async_runs.share:  # no async run lately: threads only
            take, worth = min(room, limit), room >= least
        else:
            take, worth = async_runs.take(room, least, limit, async_in_flight)
        if (in_flight > 0 or async_in_flight > 0) and not worth:
            return 0
        if options.max_tasks is not None:
            take = min(take, options.max_tasks - self._claimed_total)
        if take <= 0:
            return 0
        self._limited = bool(registry.limited)  # tasks with limits: claim through them
        # A slot is only worth taking with a hand free to run it at once: a run waiting in
        # this process for a thread would hold its key's slot idle meanwhile.
        hands = options.concurrency - in_flight
        if async_runs is not None and async_runs.share and _limited_async():
            hands += async_runs.concurrency - async_in_flight
        runs = queue_of(options.database).claim(
            self.id,
            options.queues,
            take,
            options.lease,
            datetime.now(UTC),
            options.exclude_queues,
            self._limited,
            rated=bool(registry.rated),
            admit_most=max(0, hands),
        )
        on_threads, on_loop = (runs, []) if async_runs is None else async_runs.route(runs)
        with self._lock:
            self._in_flight += len(on_threads)
            self._async_in_flight += len(on_loop)
            self._claimed_total += len(runs)
            # Threads wake this loop when half the batch is done, so the next claim overlaps
            # with the rest; not while the queue is empty (the poll interval covers that).
            self._refill_at = options.concurrency + limit - max(1, limit // 2)
            self._starved = len(runs) < take
        for run in on_threads:
            self._work.put(run)
        if on_loop:
            assert async_runs is not None
            async_runs.executor.submit(on_loop)
        return len(runs)

    # -- threads ----------------------------------------------------------------------------

    def _start_threads(self) -> None:
        from .heartbeat import Heartbeat

        if self._progress is not None:
            register_sink(self.backend.name, self._progress)
        register_step_store(self.backend.name, self._steps)
        if self.backend.supports_cancel:  # the heartbeat delivers cancel requests
            watch_cancels(self.backend.name)
        from .notify import Listener

        if self.options.async_concurrency:
            # Its event loop starts with the first async run: none for sync-only work.
            self._async = AsyncRuns(self.options, self.backend.name, self._async_done)
        for number in range(self.options.concurrency):
            thread = threading.Thread(
                target=self._execute_loop, name=f"tasks-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._heartbeat = Heartbeat(self)
        self._heartbeat.start()
        self._listener: Listener | None = None
        if self.options.listen and connection_of(self.options.database).vendor == "postgresql":
            self._listener = Listener(self.options.database, self._wake, self._halt, self.id)
            self._listener.start()

    def _execute_loop(self) -> None:
        from django.db import close_old_connections, connections

        requeue_lost_connections()
        if self.backend.joins_timed_out_attempts:  # it holds the run's lease meanwhile
            join_timed_out_attempts()
        name = self.backend.name
        handing = self._hands_off()
        next_run: ClaimedRun | None = None
        streak: float | None = None  # since when this thread hands its slot on
        while True:
            run = self._work.get() if next_run is None else next_run
            next_run = None
            if run is None:
                break
            began = time.perf_counter()
            try:
                outcome = execute(attempt_of(run, name))
            except CapacityExceededError as exc:  # refused before it ran: the same attempt, later
                self._postpone(run, exc, REFUSED_RETRY_DELAY)
                outcome = None
            except AttemptInterrupted as exc:  # its database connection dropped: not its fault
                self._postpone(run, exc, INTERRUPTED_RETRY_DELAY)
                outcome = None
            except BaseException as exc:  # execute() reports task failures; this is a bug
                logger.exception("Run %s could not be executed", run.id)
                outcome = Outcome(
                    run.id,
                    run.task_name,
                    run.attempt,
                    run.max_attempts,
                    TaskStatus.FAILED,
                    error=error_info(exc),
                )
            seconds = time.perf_counter() - began
            written, yielded = None, False
            if outcome is not None and handing and hands_off(run.task_name):
                written, next_run, yielded, streak = self._hand_on(run, outcome, seconds, streak)
            close_old_connections()
            with self._lock:
                self._avg_seconds = (
                    seconds if not self._avg_seconds else 0.9 * self._avg_seconds + 0.1 * seconds
                )
                if written is not None:
                    self._outcomes.written.append(written)
                    self.processed += 1
                elif outcome is not None:
                    self._outcomes.pending.append((run, outcome, seconds))
                if next_run is not None:  # this thread runs it next: still in flight
                    self._claimed_total += 1
                    continue
                self._in_flight -= 1
                # Through the limits, a finished run frees a slot: claim again at once.
                refill = (
                    self._in_flight == 0
                    or self._limited
                    or (not self._starved and self._in_flight <= self._refill_at)
                )
            # A slot let go at the end of a streak: every worker was woken to race for it.
            if refill and not yielded and not self._wake.is_set():
                self._wake.set()
        connections.close_all()

    def _hands_off(self) -> bool:
        """Whether this worker's threads hand freed concurrency slots on (``handoff``)."""
        options = self.options
        return options.max_tasks is None and connection_of(options.database).vendor == "postgresql"

    def _hand_on(
        self, run: ClaimedRun, outcome: Outcome, seconds: float, streak: float | None
    ) -> tuple[Finished | None, ClaimedRun | None, bool, float | None]:
        """On a worker thread, a run that held a concurrency slot ended (``handoff``):
        ``(the outcome written here or None, the run this thread runs next or None, whether
        the slot was let go to every worker's race, since when this thread hands on)``."""
        moment = time.monotonic()
        if streak is not None and moment - streak > STREAK:
            queue = queue_of(self.options.database)
            written = finish_and_yield(queue, self.id, run, outcome, seconds)
            return written, None, written is not None, None
        written, next_run = self._finish_and_claim(run, outcome, seconds)
        streak = None if next_run is None else (streak or moment)
        async_runs = self._async
        if (
            next_run is not None
            and async_runs is not None
            and loop_chain(next_run.task_name, self.backend.name) is not None
        ):
            self._to_loop(next_run)  # an async run: the event loop's
            next_run = None
        return written, next_run, False, streak

    def _finish_and_claim(
        self, run: ClaimedRun, outcome: Outcome, seconds: float
    ) -> tuple[Finished | None, ClaimedRun | None]:
        """On a worker thread: ``handoff.finish_and_claim`` (nothing is claimed once the
        worker stops)."""
        if self._stop.is_set():
            return None, None
        written, claimed = finish_and_claim(
            queue_of(self.options.database),
            self.id,
            self.options,
            run,
            outcome,
            seconds,
            rated=bool(registry.rated),
        )
        if claimed is not None and self._stop.is_set():
            with self._lock:  # stopping meanwhile: the shutdown releases it
                self._in_flight += 1
                self._claimed_total += 1
            self._work.put(claimed)
            return written, None
        return written, claimed

    def _to_loop(self, run: ClaimedRun) -> None:
        """A run a thread claimed that is the event loop's (an async task)."""
        async_runs = self._async
        assert async_runs is not None
        _, on_loop = async_runs.route([run])
        with self._lock:
            self._async_in_flight += 1
            self._claimed_total += 1
        async_runs.executor.submit(on_loop)

    def _async_done(
        self, run: ClaimedRun, outcome: Outcome | None, error: BaseException | None, seconds: float
    ) -> None:
        """An async attempt ended (on the loop thread): as ``_execute_loop`` does for a
        thread's."""
        if isinstance(error, CapacityExceededError):
            self._postpone(run, error, REFUSED_RETRY_DELAY)
        elif isinstance(error, AttemptInterrupted):
            self._postpone(run, error, INTERRUPTED_RETRY_DELAY)
        elif error is not None:
            logger.error("Run %s could not be executed", run.id, exc_info=error)
            outcome = Outcome(
                run.id,
                run.task_name,
                run.attempt,
                run.max_attempts,
                TaskStatus.FAILED,
                error=error_info(error),
            )
        async_runs = self._async
        assert async_runs is not None
        async_runs.learn(seconds)
        with self._lock:
            if outcome is not None:
                self._outcomes.pending.append((run, outcome, seconds))
            self._async_in_flight -= 1
            in_flight = self._async_in_flight
            # Through the limits, a finished run frees a slot: claim again at once.
            refill = (
                in_flight == 0
                or self._limited
                or (
                    not self._starved and in_flight <= async_runs.limit() - async_runs.least_claim()
                )
            )
        if refill and not self._wake.is_set():
            self._wake.set()

    def _postpone(self, run: ClaimedRun, reason: BaseException, delay: timedelta) -> None:
        """Put a run this process refused or could not finish back, as the same attempt,
        ``delay`` from now (as ``ThreadingBackend`` does); the main loop writes it (it keeps
        it while the database is away), and a failure to do so leaves it to the lease."""
        run_after = datetime.now(UTC) + delay
        logger.warning(
            "Task %s (run %s) attempt %d was not run to its end (%s); it is requeued for %s "
            "as the same attempt.",
            run.task_name,
            run.id,
            run.attempt,
            reason,
            run_after.isoformat(),
            extra={"task_name": run.task_name, "run_id": run.id, "attempt": run.attempt},
        )
        with self._lock:
            self._outcomes.given_back.append((run, run_after))
        self._wake.set()

    # -- shutdown ---------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning("Second signal: exiting now; leases will recover unfinished runs")
            os._exit(1)
        logger.info("Signal %d: finishing in-flight runs (grace %gs)", signum, self.options.grace)
        self.stop()

    def _shutdown(self) -> None:
        unstarted: list[ClaimedRun] = []
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                unstarted.append(item)
        async_runs = self._async
        unstarted_async = async_runs.executor.stop() if async_runs is not None else []
        with self._lock:
            self._in_flight -= len(unstarted)
            self._async_in_flight -= len(unstarted_async)
        unstarted += unstarted_async
        for _ in self._threads:
            self._work.put(None)
        deadline = time.monotonic() + self.options.grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        idle = async_runs is None or async_runs.executor.wait_idle(deadline - time.monotonic())
        if any(thread.is_alive() for thread in self._threads) or not idle:
            logger.warning("Grace period over; unfinished runs will be recovered by their lease")
        self._halt.set()
        try:
            if unstarted:
                released = queue_of(self.options.database).release(self.id, unstarted)
                logger.info("Released %d claimed runs that had not started", released)
            self.processed += self._outcomes.flush(final=True)
        except Exception as exc:
            if not is_db_error(exc):
                raise
            logger.warning("Could not write back on shutdown (%s); leases will recover", exc)
        self._heartbeat.join(5)
        try:
            for_connection(connection_of(self.options.database)).workers.forget(self.id)
        except Exception as exc:
            if not is_db_error(exc):
                raise
            logger.warning("Could not remove the worker heartbeat (%s); it expires", exc)
        if self._listener is not None:
            self._listener.join(5)
        if async_runs is not None:
            async_runs.executor.close()
        if self._progress is not None:
            unregister_sink(self.backend.name, self._progress)
        unregister_step_store(self.backend.name, self._steps)
        if self.backend.supports_cancel:
            stop_watching_cancels(self.backend.name)


def _limited_async() -> bool:
    """Whether a registered task with limits is an ``async def run()`` one (its runs take
    the event loop's hands, not the threads')."""
    from ..middleware.timeout import is_async

    for name in registry.limited:
        try:
            if is_async(registry.get(name)):
                return True
        except Exception:
            continue
    return False


def _start_scheduler(database: str) -> Any:
    from ..schedules.runtime import SchedulerThread, build_scheduler

    thread = SchedulerThread(build_scheduler(database))
    thread.start()
    return thread
