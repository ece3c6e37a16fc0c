"""django-generic-tasks: typed background tasks for Django.

>>> import django_generic_tasks as tasks
>>> class EmailParams(BaseModel): ...
>>> class EmailTask(tasks.Task[EmailParams]):
...     def run(self): ...
>>> EmailTask(EmailParams(...)).start()

The names below are imported on first use, so that importing the package (as the pytest plugin
does at start-up, before coverage measurement begins) runs none of its modules.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exceptions import (
        ConfigurationError,
        DuplicateTaskNameError,
        EnqueueError,
        InvalidOptionError,
        MissingDependencyError,
        ResultNotAvailableError,
        TaskDefinitionError,
        TasksError,
        TaskTimeoutError,
        UnknownTaskError,
        UnsupportedOptionError,
    )
    from .registry import TaskRegistry, get_task_class, registry
    from .status import ErrorInfo, TaskHandle, TaskStatus
    from .task import Task

_EXPORTS = {
    "ConfigurationError": ".exceptions",
    "DuplicateTaskNameError": ".exceptions",
    "EnqueueError": ".exceptions",
    "InvalidOptionError": ".exceptions",
    "MissingDependencyError": ".exceptions",
    "ResultNotAvailableError": ".exceptions",
    "TaskDefinitionError": ".exceptions",
    "TasksError": ".exceptions",
    "TaskTimeoutError": ".exceptions",
    "UnknownTaskError": ".exceptions",
    "UnsupportedOptionError": ".exceptions",
    "get_task_class": ".registry",
    "ErrorInfo": ".status",
    "TaskHandle": ".status",
    "TaskStatus": ".status",
    "Task": ".task",
}

__all__ = [
    "ConfigurationError",
    "DuplicateTaskNameError",
    "EnqueueError",
    "ErrorInfo",
    "InvalidOptionError",
    "MissingDependencyError",
    "ResultNotAvailableError",
    "Task",
    "TaskDefinitionError",
    "TaskHandle",
    "TaskStatus",
    "TaskTimeoutError",
    "TasksError",
    "UnknownTaskError",
    "UnsupportedOptionError",
    "get_task_class",
    "registry",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    @property
    def registry(self) -> TaskRegistry:
        """The task registry (``django_generic_tasks.registry.registry``)."""
        from .registry import registry

        return registry

    @registry.setter
    def registry(self, value: object) -> None:
        # Importing the ``registry`` submodule stores it here; the registry instance wins,
        # as it did when this package imported it eagerly.
        pass


sys.modules[__name__].__class__ = _Package
