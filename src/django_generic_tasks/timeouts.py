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

from .exceptions import CapacityExceededError, TaskTimeoutError

if TYPE_CHECKING:
    from .task import Task

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


_abandoned_lock = threading.Lock()
abandoned = 0  # helper threads of timed-out runs that are still running


def abandoned_threads() -> int:
    """How many timed-out sync runs of this process are still running in the background."""
    return abandoned


def refuse_when_over_capacity(task_class: type[Task[Any]]) -> None:
    """Raise ``CapacityExceededError`` (logged) when ``TASKS_MAX_ABANDONED_THREADS`` timed-out
    runs are still running: a timed sync run could leave one more thread behind."""
    from .conf import get_settings

    limit = get_settings().max_abandoned_threads
    if abandoned < limit:
        return
    logger.error(
        "Task %s refused: %d timed-out run(s) of this process are still running "
        "(TASKS_MAX_ABANDONED_THREADS = %d).",
        task_class.name,
        abandoned,
        limit,
        extra={"task_name": task_class.name},
    )
    raise CapacityExceededError(
        f"{abandoned} timed-out task run(s) are still running in this process "
        f"(TASKS_MAX_ABANDONED_THREADS = {limit}); {task_class.name} was not started."
    )


def run_in_thread_with_timeout(task: Task[Any], timeout: float) -> Any:
    """Run a sync task on a helper thread and stop waiting for it after ``timeout``.

    Python cannot kill a thread: a task that overruns keeps running in the background (it is
    logged, and counted: see ``refuse_when_over_capacity``), but its run is failed so the
    caller moves on.
    """
    global abandoned
    box: dict[str, Any] = {}

    def target() -> None:
        global abandoned
        from django.db import connections

        try:
            box["result"] = task.run()
        except BaseException as exc:
            box["error"] = exc
        finally:
            connections.close_all()
            with _abandoned_lock:
                box["finished"] = True
                if box.get("abandoned"):
                    abandoned -= 1

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
    with _abandoned_lock:
        if not box.get("finished"):
            box["abandoned"] = True
            abandoned += 1
    if box.get("abandoned"):
        logger.warning(
            "Task %s exceeded its timeout of %gs; its thread is left to finish in the background "
            "(%d such thread(s) now).",
            type(task).name,
            timeout,
            abandoned,
        )
        raise TaskTimeoutError(f"The task ran longer than its timeout of {timeout:g}s.")
    if "error" in box:
        raise box["error"]
    return box.get("result")
