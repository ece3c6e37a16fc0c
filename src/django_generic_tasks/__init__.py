"""django-generic-tasks: typed background tasks for Django.

>>> import django_generic_tasks as tasks
>>> class EmailParams(BaseModel): ...
>>> class EmailTask(tasks.Task[EmailParams]):
...     def run(self): ...
>>> EmailTask(EmailParams(...)).start()
"""

from .core.context import RunContext
from .core.dispatch import get_handle
from .core.handles import TaskHandle
from .core.modelref import ModelRef
from .core.pausing import pause_queue, pause_task, paused, resume_queue, resume_task
from .core.registry import get_task_class, registry
from .core.schedule import Schedule
from .core.status import ErrorInfo, TaskStatus
from .core.task import Task
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
    RetryAfter,
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
from .workflows import WorkflowFailedError, WorkflowHandle, batch, chain, group

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
    "RetryAfter",
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
    "WorkflowFailedError",
    "WorkflowHandle",
    "batch",
    "chain",
    "get_handle",
    "get_task_class",
    "group",
    "pause_queue",
    "pause_task",
    "paused",
    "registry",
    "resume_queue",
    "resume_task",
]
