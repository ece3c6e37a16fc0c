"""The exception hierarchy of django-generic-tasks.

Every exception's docstring is its default message, so ``raise UnknownTaskError()`` already
says what went wrong; pass a more specific message when you have one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .status import ErrorInfo


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

    ``args`` are ``(type, message, traceback, task_name)``: the fields of the task's own error
    (an ``ErrorInfo``) and the task's name, plain strings, so the exception survives a JSON
    result store; ``error`` gives the error back as an ``ErrorInfo``.
    """

    def __init__(
        self, type: str = "", message: str = "", traceback: str = "", task_name: str = ""
    ) -> None:
        Exception.__init__(self, type, message, traceback, task_name)

    @property
    def task_name(self) -> str:
        """The name of the task whose run failed ("" when unknown)."""
        return str(self.args[3]) if len(self.args) > 3 else ""

    @property
    def error(self) -> ErrorInfo:
        """The task's error."""
        from .status import ErrorInfo

        type_, message, traceback = (str(arg) for arg in (*self.args, "", "", "")[:3])
        return ErrorInfo(type_, message, traceback)

    def __str__(self) -> str:
        type_, message = (str(arg) for arg in (*self.args, "", "")[:2])
        if not type_:
            return (self.__doc__ or "").strip().splitlines()[0]
        return f"{type_}: {message}"


class CapacityExceededError(TasksError):
    """Too many timed-out task runs are still running in this process; no more timed runs are
    started until some finish (see TASKS_MAX_ABANDONED_THREADS)."""


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
