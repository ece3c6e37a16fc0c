"""Timeouts: stopping to wait for a run that overran ``Task.timeout``, and what that leaves.

Python cannot kill a thread. An async run is cancelled at its timeout; a sync run runs on a
helper thread that the caller stops waiting for. Where the backend's executor holds the run
(``joins_timed_out_attempts``: the database worker, holding the run's lease) it then waits for
that thread to end, so two attempts of one run never overlap; elsewhere the thread is left to
finish in the background, counted, and bounded by ``TASKS_MAX_ABANDONED_THREADS``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..exceptions import CapacityExceededError, TaskTimeoutError

if TYPE_CHECKING:
    from ..core.task import Task

logger = logging.getLogger("django_generic_tasks")


async def with_timeout(coro: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
    """Await ``coro``; ``TaskTimeoutError`` when it takes longer than ``timeout`` seconds."""
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise TaskTimeoutError(f"The task ran longer than its timeout of {timeout:g}s.") from None


_executor = threading.local()


def join_timed_out_attempts(enabled: bool = True) -> None:
    """Make this thread wait for the thread of a timed-out sync attempt it runs to end before
    the attempt's outcome (and a retry) is written: called on its executing threads by a
    backend's executor that holds the run meanwhile (``Backend.joins_timed_out_attempts``:
    the database worker, which keeps the run's lease)."""
    _executor.joins = enabled


class AbandonedThreads:
    """The helper threads of this process's timed-out sync runs that are still running: Python
    cannot kill them, so they are counted and bounded (``TASKS_MAX_ABANDONED_THREADS``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        """How many are running now (read it; ``left()`` and ``ended()`` change it)."""

    def left(self) -> int:
        """One more thread is left behind; how many there are now."""
        with self._lock:
            self.count += 1
            return self.count

    def ended(self) -> None:
        """A thread left behind has ended."""
        with self._lock:
            self.count -= 1

    def refuse_when_over_capacity(self, task_class: type[Task[Any]]) -> None:
        """Raise ``CapacityExceededError`` (logged) when ``TASKS_MAX_ABANDONED_THREADS``
        threads are still running: a timed sync run could leave one more behind."""
        from ..conf import get_settings

        count, limit = self.count, get_settings().max_abandoned_threads
        if count < limit:
            return
        logger.error(
            "Task %s refused: %d timed-out run(s) of this process are still running "
            "(TASKS_MAX_ABANDONED_THREADS = %d).",
            task_class.name,
            count,
            limit,
            extra={"task_name": task_class.name},
        )
        raise CapacityExceededError(
            f"{count} timed-out task run(s) are still running in this process "
            f"(TASKS_MAX_ABANDONED_THREADS = {limit}); {task_class.name} was not started."
        )


abandoned = AbandonedThreads()
"""This process's abandoned threads (the timeout middleware is given it when its chains are
built)."""


def abandoned_threads() -> int:
    """How many timed-out sync runs of this process are still running in the background."""
    return abandoned.count


refuse_when_over_capacity = abandoned.refuse_when_over_capacity


def run_in_thread_with_timeout(task: Task[Any], timeout: float) -> Any:
    """Run a sync task on a helper thread and stop waiting for it after ``timeout``.

    Python cannot kill a thread: a task that overruns keeps running in the background (it is
    logged, and counted: see ``refuse_when_over_capacity``), but its run is failed so the
    caller moves on.
    """
    box: dict[str, Any] = {}
    lock = threading.Lock()  # "finished" and "abandoned" are decided under it, once each
    now_left = 0

    def target() -> None:
        from django.db import connections

        try:
            box["result"] = task.run()
        except BaseException as exc:
            box["error"] = exc
        finally:
            connections.close_all()
            with lock:
                box["finished"] = True
                if box.get("abandoned"):
                    abandoned.ended()

    thread = threading.Thread(target=target, name=f"task-{type(task).name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not box.get("finished"):
        task._cancel_requested = True  # type: ignore[attr-defined]  # this attempt only
        context = task.context
        if getattr(_executor, "joins", False):  # unset on threads no executor marked
            logger.warning(
                "Task %s (run %s) exceeded its timeout of %gs on attempt %d; it was asked to "
                "cancel, and the run's lease is kept until its thread ends (attempts of one "
                "run never overlap).",
                type(task).name,
                context.run_id,
                timeout,
                context.attempt,
                extra={"task_name": type(task).name, "run_id": context.run_id},
            )
            thread.join()
            logger.info(
                "Task %s (run %s): the timed-out thread ended", type(task).name, context.run_id
            )
            raise TaskTimeoutError(f"The task ran longer than its timeout of {timeout:g}s.")
    with lock:
        if not box.get("finished"):
            box["abandoned"] = True
            now_left = abandoned.left()
    if box.get("abandoned"):
        logger.warning(
            "Task %s exceeded its timeout of %gs; its thread is left to finish in the background "
            "(%d such thread(s) now).",
            type(task).name,
            timeout,
            now_left,
        )
        raise TaskTimeoutError(f"The task ran longer than its timeout of {timeout:g}s.")
    if "error" in box:
        raise box["error"]
    return box.get("result")
