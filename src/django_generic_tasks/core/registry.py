"""The task registry: task name -> task class, filled as task classes are defined."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..exceptions import DuplicateTaskNameError, UnknownTaskError

if TYPE_CHECKING:
    from .task import Task

    AnyTaskClass = type[Task[Any]]


class TaskRegistry:
    """Maps stable task names to task classes."""

    def __init__(self) -> None:
        self._tasks: dict[str, AnyTaskClass] = {}
        self._lock = threading.Lock()
        self.urls_built = False
        """Set once an HTTP router has built its routes; later registrations go to listeners."""
        self._late_listeners: list[Callable[[AnyTaskClass], None]] = []
        self._resolvers: dict[str, Callable[[str], AnyTaskClass]] = {}
        self.limited: frozenset[str] = frozenset()
        """Names of the registered tasks with a ``concurrency_limit`` or ``rate_limit``: a
        worker claims through the limits only when this is not empty."""
        self.rated: frozenset[str] = frozenset()
        """Names of the registered tasks with a ``rate_limit`` (a claim gives rate limit
        turns only when this is not empty)."""

    def register(self, task_class: AnyTaskClass) -> None:
        """Register a task class under its ``name``.

        Redefining the same class (same module and qualified name, e.g. a module reload)
        replaces it; two different classes under one name raise ``DuplicateTaskNameError``.
        """
        name = task_class.name
        with self._lock:
            existing = self._tasks.get(name)
            if existing is not None and _dotted(existing) != _dotted(task_class):
                raise DuplicateTaskNameError(
                    f"Task name {name!r} is used by both {_dotted(existing)} and "
                    f"{_dotted(task_class)}; set a distinct `name` on one of them."
                )
            self._tasks[name] = task_class
            if task_class.concurrency_limit is not None or task_class.rate_limit is not None:
                self.limited = self.limited | {name}
            else:
                self.limited = self.limited - {name}
            self.rated = self.rated - {name}
            if task_class.rate_limit is not None:
                self.rated = self.rated | {name}
            else:
                self.rated = self.rated - {name}
        if self.urls_built and existing is None:
            for listener in list(self._late_listeners):
                listener(task_class)

    def on_late_registration(self, listener: Callable[[AnyTaskClass], None]) -> None:
        """Call ``listener(task_class)`` for each new task registered once ``urls_built`` is set.

        The HTTP router uses it to warn that such a task has no endpoint; the registry itself
        knows nothing about HTTP. Adding the same listener twice has no effect.
        """
        with self._lock:
            if listener not in self._late_listeners:
                self._late_listeners.append(listener)

    def add_resolver(self, prefix: str, resolve: Callable[[str], AnyTaskClass]) -> None:
        """Let ``resolve(name)`` find the task class of names starting with ``prefix`` that no
        class registered (runs of Django ``@task`` functions: one class per function, made
        when a run of it first executes). ``resolve`` raises ``UnknownTaskError`` for a name it
        cannot resolve. The names stay out of ``names()`` and ``in``: nothing is served for
        them over HTTP or listed as a task of this project."""
        with self._lock:
            self._resolvers[prefix] = resolve

    def unregister(self, name: str) -> None:
        """Forget the task registered under ``name`` (for tests)."""
        with self._lock:
            self._tasks.pop(name, None)
            self.limited = self.limited - {name}

    def get(self, name: str) -> AnyTaskClass:
        """Return the task class registered under ``name``."""
        try:
            return self._tasks[name]
        except KeyError:
            for prefix, resolve in self._resolvers.items():
                if name.startswith(prefix):
                    return resolve(name)
            raise UnknownTaskError(
                f"No task is registered under the name {name!r}. Is the module that defines it "
                "imported at start-up (an installed app's tasks.py, or AppConfig.ready())?"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[AnyTaskClass]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def names(self) -> list[str]:
        """All registered task names, sorted."""
        return sorted(self._tasks)


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


registry = TaskRegistry()
"""The process-wide registry every task class registers into."""


def get_task_class(name: str) -> AnyTaskClass:
    """Return the task class registered under ``name`` (``UnknownTaskError`` otherwise)."""
    return registry.get(name)
