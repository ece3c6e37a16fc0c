"""The exception hierarchy of django-generic-tasks.

Every exception's docstring is its default message, so ``raise UnknownTaskError()`` already
says what went wrong; pass a more specific message when you have one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .core.status import ErrorInfo, TaskStatus


class TasksError(Exception):
    """Something went wrong in django-generic-tasks."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class TaskDefinitionError(TasksError, TypeError):
    """A task class is not defined correctly."""


class DuplicateTaskNameError(TaskDefinitionError):
    """Two task classes were registered under the same name."""


class UnknownTaskError(TasksError, LookupError):
    """No task is registered under that name."""


class UnsupportedOptionError(TasksError, ValueError):
    """The configured backend cannot honour an option given to start()."""


class InvalidOptionError(TasksError, ValueError):
    """An option given to start() is not valid."""


class ConfigurationError(TasksError, ImproperlyConfigured):
    """The django-generic-tasks settings are not valid."""


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency needed by this feature is not installed."""


class EnqueueError(TasksError):
    """The backend could not accept the task; it was not started."""


class TaskTimeoutError(TasksError, TimeoutError):
    """The task ran longer than its timeout."""


class TaskCancelled(TasksError):
    """Raised by ``Task.check_cancelled()``: the run was asked to stop; it ends ``cancelled``
    (never retried)."""


class RunFailedError(TasksError):
    """A task run failed for good.

    ``args`` are ``(type, message, traceback, task_name, status, run_id)``: the fields of the
    task's own error (an ``ErrorInfo``), the task's name, and (from ``handle.wait()``) how the
    run ended and its id; plain strings, so the exception survives a JSON result store.
    ``error`` gives the error back as an ``ErrorInfo``.
    """

    def __init__(
        self,
        type: str = "",
        message: str = "",
        traceback: str = "",
        task_name: str = "",
        status: str = "",
        run_id: str = "",
    ) -> None:
        Exception.__init__(self, type, message, traceback, task_name, status, run_id)

    def _arg(self, index: int) -> str:
        return str(self.args[index]) if len(self.args) > index else ""

    @property
    def task_name(self) -> str:
        """The name of the task whose run failed ("" when unknown)."""
        return self._arg(3)

    @property
    def status(self) -> TaskStatus | None:
        """How the run ended: ``failed``, ``discarded`` or ``cancelled`` (``None`` when
        unknown)."""
        from .core.status import TaskStatus

        value = self._arg(4)
        return TaskStatus(value) if value in TaskStatus._value2member_map_ else None

    @property
    def run_id(self) -> str:
        """The id of the run ("" when unknown)."""
        return self._arg(5)

    @property
    def error(self) -> ErrorInfo:
        """The task's error."""
        from .core.status import ErrorInfo

        return ErrorInfo(self._arg(0), self._arg(1), self._arg(2))

    def __str__(self) -> str:
        type_, message = self._arg(0), self._arg(1)
        described = f"{type_}: {message}" if type_ else message
        if self.run_id:
            return f"Run {self.run_id} of {self.task_name} ended {self._arg(4)}: {described}"
        return described or (self.__doc__ or "").strip().splitlines()[0]


class InvalidResultError(TasksError, ValueError):
    """A task's return value is not valid for its declared result type (``Task[P, R]``)."""


class WaitInTransactionError(TasksError, RuntimeError):
    """``wait()`` cannot see a run finish from inside ``transaction.atomic()``."""


class CapacityExceededError(TasksError):
    """Too many timed-out task runs are still running in this process; no more timed runs are
    started until some finish (see TASKS_MAX_ABANDONED_THREADS)."""


class FlowDeferred(CapacityExceededError):
    """A run may not start yet: its concurrency limit has no free slot, or its rate limit
    makes it due later. Not a failure and not an attempt: the backend puts it back, due at
    ``until`` (a rate limit) or when ``park(callback)`` calls ``callback`` (a slot freed)."""

    def __init__(
        self,
        message: str,
        *,
        until: datetime | None = None,
        park: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        super().__init__(message)
        self.until = until
        self.park = park

    def wait(self) -> None:
        """Block until the run may be tried again (for backends that run in the caller)."""
        import threading
        import time

        if self.park is not None:
            freed = threading.Event()
            self.park(freed.set)
            freed.wait()
        elif self.until is not None:
            time.sleep(max(0.0, (self.until - datetime.now(UTC)).total_seconds()))


class AttemptInterrupted(TasksError):
    """An attempt was cut short by something that is not the task's fault (its database
    connection was lost): the database worker puts the same attempt back."""


class WorkerLost(TasksError):
    """The worker running an attempt stopped (killed, crashed, or cut off) and its lease
    expired: what the retry policy is asked about when the lease reaper takes the run back."""


class ResultNotAvailableError(TasksError):
    """This backend does not keep task results."""


class ModelNotFoundError(TasksError, LookupError):
    """A Django model instance referenced by a task's params no longer exists."""


class RunNotFoundError(TasksError, LookupError):
    """There is no task run with that id."""


class CloudTasksEnqueueError(EnqueueError):
    """Cloud Tasks did not accept the task; it was not started."""


class BulkEnqueueError(EnqueueError):
    """Some tasks of a bulk start were not accepted; the others were started.

    ``handles`` has one handle per request, in order (the failed ones with status ``failed``
    and ``error`` set); ``failures`` lists ``(index, exception)`` for each failed request.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        handles: list[Any] | None = None,
        failures: list[tuple[int, BaseException]] | None = None,
    ) -> None:
        super().__init__(message)
        self.handles: list[Any] = handles or []
        self.failures: list[tuple[int, BaseException]] = failures or []


class RetryAfter(TasksError):
    """Raised by a task: try this run again at a given moment (e.g. an API answered 429).

    ``when`` is seconds from now (a number or a ``timedelta``) or an aware ``datetime``.
    ``counts_as_attempt=False`` (the default, a "snooze") does not use up one of the task's
    ``max_attempts``; ``True`` does, and the run fails for good when none is left. ``reason``
    is shown beside the waiting run (admin, dashboard). ``RetryAfter.from_response()`` reads
    an HTTP response's ``Retry-After`` header. Honoured by every backend, through the retry
    policy: the next attempt is due exactly then.
    """

    def __init__(
        self,
        when: float | timedelta | datetime,
        *,
        counts_as_attempt: bool = False,
        reason: str = "",
    ) -> None:
        self.retry_at = _moment(when)
        self.counts_as_attempt = bool(counts_as_attempt)
        self.reason = str(reason)
        text = f"retry at {self.retry_at.isoformat(timespec='milliseconds')}"
        super().__init__(f"{text}: {self.reason}" if self.reason else text)

    @classmethod
    def from_response(
        cls,
        response: Any,
        *,
        default: float = 60.0,
        counts_as_attempt: bool = False,
        reason: str = "",
    ) -> RetryAfter:
        """The ``RetryAfter`` an HTTP response asks for: its ``Retry-After`` header, as
        delta-seconds or an HTTP-date; ``default`` seconds when it has none (or an unreadable
        one). ``response`` is any object with a ``headers`` mapping (requests, httpx,
        urllib, Django's test client) and, for the default reason, a status code."""
        headers = getattr(response, "headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        status = getattr(response, "status_code", None) or getattr(response, "status", None)
        when = retry_after_seconds(value, default=default)
        return cls(
            when,
            counts_as_attempt=counts_as_attempt,
            reason=reason or (f"HTTP {status}" if status else "Retry-After"),
        )


def retry_after_seconds(value: str | None, *, default: float = 60.0) -> float:
    """Seconds from now that a ``Retry-After`` header value asks to wait (delta-seconds or an
    HTTP-date; a date in the past: 0); ``default`` when it is missing or unreadable."""
    from email.utils import parsedate_to_datetime

    if value is None or not str(value).strip():
        return default
    text = str(value).strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _moment(when: float | timedelta | datetime) -> datetime:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise InvalidOptionError("RetryAfter(datetime) must be timezone-aware.")
        return when.astimezone(UTC)
    if isinstance(when, timedelta):
        when = when.total_seconds()
    if isinstance(when, bool) or not isinstance(when, int | float) or math.isnan(when):
        raise InvalidOptionError(
            f"RetryAfter() takes seconds, a timedelta or an aware datetime (got {when!r})."
        )
    return datetime.now(UTC) + timedelta(seconds=max(0.0, float(when)))
