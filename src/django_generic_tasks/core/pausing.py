"""Pausing and resuming queues and tasks from Python (``tasks.pause_queue("emails")``).

A paused queue's (or task's) runs wait: workers claim none of them, go on with the other
queues, and claim them again once it is resumed; nothing is lost. The backend keeps the
paused state (``Backend.pause()``; ``DatabaseBackend`` in its database, for every worker);
a backend that cannot pause raises ``UnsupportedOptionError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..backends.base import Backend

__all__ = ["Paused", "pause_queue", "pause_task", "paused", "resume_queue", "resume_task"]


@dataclass(frozen=True, slots=True)
class Paused:
    """A paused queue (``kind`` ``"queue"``) or task (``"task"``), paused since ``since``."""

    kind: str
    name: str
    since: datetime


def _backend(backend: Backend | None) -> Backend:
    from ..conf import get_backend

    return backend or get_backend()


def _task_name(task: Any) -> str:
    return task if isinstance(task, str) else str(task.name)


def pause_queue(name: str, *, backend: Backend | None = None) -> bool:
    """Pause queue ``name`` (``False``: it already was)."""
    return _backend(backend).pause("queue", name)


def resume_queue(name: str, *, backend: Backend | None = None) -> bool:
    """Resume queue ``name`` (``False``: it was not paused)."""
    return _backend(backend).resume("queue", name)


def pause_task(task: Any, *, backend: Backend | None = None) -> bool:
    """Pause a task (its class or its name) on every queue (``False``: it already was)."""
    return _backend(backend).pause("task", _task_name(task))


def resume_task(task: Any, *, backend: Backend | None = None) -> bool:
    """Resume a paused task (its class or its name) (``False``: it was not paused)."""
    return _backend(backend).resume("task", _task_name(task))


def paused(*, backend: Backend | None = None) -> list[Paused]:
    """What is paused now, oldest first (``[]`` on a backend that cannot pause)."""
    return [Paused(kind, name, since) for kind, name, since in _backend(backend).paused()]
