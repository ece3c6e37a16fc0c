"""django-generic-tasks: typed background tasks for Django.

>>> import django_generic_tasks as tasks
>>> class EmailParams(BaseModel): ...
>>> class EmailTask(tasks.Task[EmailParams]):
...     def run(self): ...
>>> EmailTask(EmailParams(...)).start()
"""

from .context import RunContext
from .exceptions import (
    CapacityExceededError,
    ConfigurationError,
    DuplicateTaskNameError,
    EnqueueError,
    InvalidOptionError,
    InvalidResultError,
    MissingDependencyError,
    ModelNotFoundError,
    ResultNotAvailableError,
    RunFailedError,
    RunNotFoundError,
    TaskCancelled,
    TaskDefinitionError,
    TasksError,
    TaskTimeoutError,
    UnknownTaskError,
    UnsupportedOptionError,
    WaitInTransactionError,
)
from .modelref import ModelRef
from .registry import get_task_class, registry
from .results import get_handle
from .schedules.spec import Schedule
from .status import ErrorInfo, TaskHandle, TaskStatus
from .task import Task

__all__ = [
    "CapacityExceededError",
    "ConfigurationError",
    "DuplicateTaskNameError",
    "EnqueueError",
    "ErrorInfo",
    "InvalidOptionError",
    "InvalidResultError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ModelRef",
    "ResultNotAvailableError",
    "RunContext",
    "RunFailedError",
    "RunNotFoundError",
    "Schedule",
    "Task",
    "TaskCancelled",
    "TaskDefinitionError",
    "TaskHandle",
    "TaskStatus",
    "TaskTimeoutError",
    "TasksError",
    "UnknownTaskError",
    "UnsupportedOptionError",
    "WaitInTransactionError",
    "get_handle",
    "get_task_class",
    "registry",
]
