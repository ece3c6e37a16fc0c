"""Typed results: checking what ``run()`` returns, decoding stored results, and ``wait()``.

A task declares its result type as the second argument of ``Task[P, R]``. The execution path
validates each return value against it (``checked_outcome``); handles decode the stored JSON
back into an ``R`` (``decode_result``); ``TaskHandle.wait()`` blocks until a run is finished
(``wait_for``), woken by the backend's finish notices where it has them (PostgreSQL
``LISTEN/NOTIFY``) and polling with a backoff elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError
from pydantic_core import to_json

from .attempts import error_info
from .exceptions import (
    InvalidOptionError,
    InvalidResultError,
    ResultNotAvailableError,
    RunFailedError,
    RunNotFoundError,
    UnknownTaskError,
    WaitInTransactionError,
)
from .registry import get_task_class
from .status import TaskStatus

if TYPE_CHECKING:
    from .attempts import Outcome
    from .backends.base import Backend
    from .status import TaskHandle
    from .task import Task

logger = logging.getLogger("django_generic_tasks")

POLL_FIRST = 0.01
"""Seconds between the first two polls of a backend without finish notices."""
POLL_GROWTH = 1.5
POLL_MAX = 1.0
"""The longest pause between two polls."""
NOTICE_RECHECK = 10.0
"""With finish notices, the row is read again after this many quiet seconds anyway: a
notice lost with a dropped connection delays a waiter by this much at most."""


class FinishNotices(Protocol):
    """What a backend with finish notices gives ``wait()``: an event set when a run may have
    finished (``DatabaseBackend`` on PostgreSQL)."""

    def subscribe(self, run_id: str) -> threading.Event | None:
        """An event set when ``run_id`` may have finished; ``None`` when notices are down."""

    def unsubscribe(self, run_id: str, event: threading.Event) -> None:
        """Stop watching ``run_id`` with ``event``."""


def checked_outcome(task_class: type[Task[Any, Any]], outcome: Outcome) -> Outcome:
    """``outcome`` of a successful attempt, its result validated against the task's result
    type; an invalid result turns it into a final failure (no retry: the code is wrong)."""
    adapter = task_class._result_adapter
    if adapter is None:
        return outcome
    try:
        outcome.result = adapter.validate_python(outcome.result)
    except ValidationError as exc:
        error = InvalidResultError(
            f"{task_class.name} returned a value that is not a valid "
            f"{_type_name(task_class.result_type)}: {exc}"
        )
        logger.error(
            "Task %s (run %s) returned an invalid result on attempt %d; the run fails "
            "without retry",
            task_class.name,
            outcome.run_id,
            outcome.attempt,
            exc_info=error,
            extra={"task_name": task_class.name, "run_id": outcome.run_id},
        )
        outcome.status, outcome.result, outcome.error = TaskStatus.FAILED, None, error_info(error)
    return outcome


def get_handle(run_id: str, *, backend: Backend | None = None) -> TaskHandle[Any]:
    """The handle of run ``run_id`` (Celery's ``AsyncResult(id)``), fresh from ``backend``
    (``TASKS_BACKEND`` unless given): ``refresh()``, ``wait()`` and ``cancel()`` work on it as
    on the handle ``start()`` returned, and its ``result`` is decoded to the task's result type.

    ``RunNotFoundError`` when the backend has no such run; ``ResultNotAvailableError`` when it
    keeps no runs to look up (``supports_results`` false). ``Task.handle(run_id)`` is the typed
    form.
    """
    from .conf import get_backend

    source = backend or get_backend()
    if not source.supports_results:
        raise ResultNotAvailableError(
            f"{type(source).__name__} does not keep task runs; it cannot look up {run_id!r}."
        )
    try:
        handle = source.get_result(run_id)
    except RunNotFoundError:
        raise
    except KeyError:
        raise RunNotFoundError(f"There is no task run {run_id!r}.") from None
    if handle.backend is None:
        handle.backend = source
    handle.result = decode_result(handle.name, handle.result)
    return handle


def decode_result(task_name: str, stored: Any) -> Any:
    """``stored`` (a result as a backend keeps it: JSON data, or already the object) as the
    result type of task ``task_name``; unchanged for tasks without one or not known here."""
    if stored is None:
        return None
    try:
        task_class = get_task_class(task_name)
    except UnknownTaskError:
        return stored
    adapter, result_type = task_class._result_adapter, task_class.result_type
    if adapter is None or type(stored) is result_type:  # nothing to do, or decoded already
        return stored
    try:
        return adapter.validate_json(to_json(stored, fallback=repr))
    except ValidationError as exc:
        raise InvalidResultError(
            f"The stored result of {task_name} is not a valid {_type_name(result_type)} "
            f"(did the task's result type change since the run?): {exc}"
        ) from exc


def wait_for[R](handle: TaskHandle[R], timeout: float | None) -> R:
    """Block until ``handle``'s run is finished; its result, or ``RunFailedError``."""
    _check_timeout(timeout)
    if not handle.status.is_finished:
        _wait_until_finished(handle, timeout)
    return result_of(handle)


async def await_result[R](handle: TaskHandle[R], timeout: float | None) -> R:
    """``wait_for`` for async code: waits on a worker thread, never blocking the loop; when
    the ``await`` is cancelled, the thread stops waiting too."""
    _check_timeout(timeout)
    if handle.status.is_finished:
        return result_of(handle)
    stop = _Stop()
    try:
        return await asyncio.to_thread(_wait_in_thread, handle, timeout, stop)
    except asyncio.CancelledError:
        stop.request()
        raise


class _Stop:
    """Tells a waiting thread to give up (its ``await`` was cancelled)."""

    def __init__(self) -> None:
        self.requested = False
        self.wake = threading.Event()

    def attach(self, event: threading.Event | None) -> None:
        """Wake ``event`` (the waiter's own) on a request, too."""
        if event is not None:
            self.wake = event
        if self.requested:
            self.wake.set()

    def request(self) -> None:
        """Ask the thread to give up now."""
        self.requested = True
        self.wake.set()


class _Stopped(Exception):
    pass


def result_of[R](handle: TaskHandle[R]) -> R:
    """The result of ``handle``'s finished run, or ``RunFailedError`` when it did not succeed."""
    if handle.status is TaskStatus.SUCCEEDED:
        return handle.result  # type: ignore[return-value]  # R may include None
    error = handle.error
    raise RunFailedError(
        error.type if error else "",
        error.message if error else f"The run ended {handle.status.value}.",
        error.traceback if error else "",
        handle.name,
        handle.status.value,
        handle.id,
    )


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
        raise InvalidOptionError(f"wait(timeout=...) must be None or >= 0 (got {timeout!r}).")


def _timed_out(handle: TaskHandle[Any], timeout: float | None) -> TimeoutError:
    return TimeoutError(
        f"Run {handle.id} of {handle.name} did not finish within {timeout:g}s "
        f"(it is {handle.status.value})."
    )


def _wait_in_thread[R](handle: TaskHandle[R], timeout: float | None, stop: _Stop) -> R:
    from django.db import connections

    try:
        _wait_until_finished(handle, timeout, stop)
    except _Stopped:
        return None  # type: ignore[return-value]  # nobody awaits it any more
    finally:
        connections.close_all()  # this pool thread's own connections
    return result_of(handle)


def _wait_until_finished(
    handle: TaskHandle[Any], timeout: float | None, stop: _Stop | None = None
) -> None:
    backend = handle.backend
    if backend is None or not backend.supports_results:
        name = type(backend).__name__ if backend is not None else "this backend"
        raise ResultNotAvailableError(
            f"{name} does not keep task results; cannot wait for run {handle.id}."
        )
    if getattr(backend, "waits_outside_transactions", False) and _in_transaction(backend):
        raise WaitInTransactionError(
            f"wait() for run {handle.id} of {handle.name} was called inside "
            "transaction.atomic(): the transaction hides the run's finish from it (and a run "
            "started in it from workers). Wait after the commit."
        )
    deadline = None if timeout is None else time.monotonic() + timeout
    notices: FinishNotices | None = getattr(backend, "finish_notices", lambda: None)()
    event = notices.subscribe(handle.id) if notices is not None else None
    if stop is not None:
        stop.attach(event)
    try:
        pause = POLL_FIRST
        while True:
            if stop is not None and stop.requested:
                raise _Stopped
            if event is not None:
                event.clear()  # before reading: a notice from now on wakes the next wait
            if _refresh(handle) and handle.status.is_finished:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _timed_out(handle, timeout)
            if event is not None:
                event.wait(NOTICE_RECHECK if remaining is None else min(remaining, NOTICE_RECHECK))
            else:
                seconds = pause if remaining is None else min(pause, remaining)
                if stop is not None:
                    stop.wake.wait(seconds)
                else:
                    time.sleep(seconds)
                pause = min(pause * POLL_GROWTH, POLL_MAX)
    finally:
        if event is not None and notices is not None:
            notices.unsubscribe(handle.id, event)


def _refresh(handle: TaskHandle[Any]) -> bool:
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


def _in_transaction(backend: Any) -> bool:
    from django.db import connections

    return bool(connections[getattr(backend, "database", "default")].in_atomic_block)


def _type_name(result_type: Any) -> str:
    return getattr(result_type, "__name__", None) or repr(result_type)
