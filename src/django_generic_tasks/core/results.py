"""Typed results: checking what ``run()`` returns, decoding stored results, and ``wait()``.

A task declares its result type as the second argument of ``Task[P, R]``. The execution path
validates each return value against it (``middleware.results``); handles decode the
stored JSON back into an ``R`` (``decode_result``); ``TaskHandle.wait()`` blocks until a run is
finished (``wait_for``), woken by the backend's finish notices where it has them (PostgreSQL
``LISTEN/NOTIFY``) and polling with a backoff elsewhere.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError
from pydantic_core import to_json

from ..exceptions import (
    InvalidOptionError,
    InvalidResultError,
    ResultNotAvailableError,
    RunFailedError,
    UnknownTaskError,
    WaitInTransactionError,
)
from .awaiting import (
    NOTICE_RECHECK,
    POLL_FIRST,
    POLL_GROWTH,
    POLL_MAX,
    refresh_unless_locked,
    timed_out,
)
from .registry import get_task_class
from .status import TaskStatus

if TYPE_CHECKING:
    from .handles import TaskHandle

logger = logging.getLogger("django_generic_tasks")


class FinishNotices(Protocol):
    """What a backend with finish notices gives ``wait()``: an event set when a run may have
    finished (``DatabaseBackend`` on PostgreSQL)."""

    def subscribe(
        self, run_id: str, event: threading.Event | None = None
    ) -> threading.Event | None:
        """An event (``event`` when given) set when ``run_id`` may have finished; ``None``
        when notices are down."""

    def unsubscribe(self, run_id: str, event: threading.Event) -> None:
        """Stop watching ``run_id`` with ``event``."""


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
            f"The stored result of {task_name} is not a valid {result_type_name(result_type)} "
            f"(did the task's result type change since the run?): {exc}"
        ) from exc


def wait_for[R](handle: TaskHandle[R], timeout: float | None) -> R:
    """Block until ``handle``'s run is finished; its result, or ``RunFailedError``."""
    _check_timeout(timeout)
    if not handle.status.is_finished:
        _wait_until_finished(handle, timeout)
    return result_of(handle)


async def await_result[R](handle: TaskHandle[R], timeout: float | None) -> R:
    """``wait_for`` for async code: waits asynchronously, its deadline counted from the
    ``await`` (see ``awaiting``: the loop's default executor is never used)."""
    from .awaiting import await_finished

    _check_timeout(timeout)
    if not handle.status.is_finished:
        await await_finished(handle, timeout)
    return result_of(handle)


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


def _wait_until_finished(handle: TaskHandle[Any], timeout: float | None) -> None:
    backend = handle.backend
    if backend is None or not backend.supports_results:
        name = type(backend).__name__ if backend is not None else "this backend"
        raise ResultNotAvailableError(
            f"{name} does not keep task results; cannot wait for run {handle.id}."
        )
    if backend.waits_outside_transactions and _in_transaction(backend.run_database):
        raise WaitInTransactionError(
            f"wait() for run {handle.id} of {handle.name} was called inside "
            "transaction.atomic(): the transaction hides the run's finish from it (and a run "
            "started in it from workers). Wait after the commit."
        )
    deadline = None if timeout is None else time.monotonic() + timeout
    notices: FinishNotices | None = backend.finish_notices()
    event = notices.subscribe(handle.id) if notices is not None else None
    try:
        pause = POLL_FIRST
        # A wait bounded by the deadline that ends without a notice has reached it, even when
        # the clock says a few microseconds are left (a timed wait may return that early):
        # the read after it is the last.
        reached = False
        while True:
            if event is not None:
                event.clear()  # before reading: a notice from now on wakes the next wait
            if refresh_unless_locked(handle) and handle.status.is_finished:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if reached or (remaining is not None and remaining <= 0):
                raise timed_out(handle, timeout)
            if event is not None:
                bound = NOTICE_RECHECK if remaining is None else min(remaining, NOTICE_RECHECK)
                reached = not event.wait(bound) and bound == remaining
            else:
                step = pause if remaining is None else min(pause, remaining)
                time.sleep(step)
                reached = step == remaining
                pause = min(pause * POLL_GROWTH, POLL_MAX)
    finally:
        if event is not None and notices is not None:
            notices.unsubscribe(handle.id, event)


def _in_transaction(database: str | None) -> bool:
    from django.db import connections

    return bool(connections[database or "default"].in_atomic_block)


def result_type_name(result_type: Any) -> str:
    """How a result type is named in errors (its ``__name__``, else its ``repr``)."""
    return getattr(result_type, "__name__", None) or repr(result_type)
