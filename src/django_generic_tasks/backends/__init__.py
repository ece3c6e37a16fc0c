"""Task backends. Each lives in its own module; optional ones import their extras lazily."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..core.enqueue import EnqueueRequest
from .base import Backend, BaseBackend

if TYPE_CHECKING:
    from .celery import CeleryBackend
    from .cloudtasks import CloudTasksBackend
    from .database import DatabaseBackend
    from .dbtasks.backend import DatabaseTaskBackend
    from .django_tasks import DjangoTasksBackend
    from .immediate import ImmediateBackend
    from .memory import InMemoryBackend
    from .threads import ThreadingBackend

_LAZY = {
    "CeleryBackend": ".celery",
    "DjangoTasksBackend": ".django_tasks",
    "CloudTasksBackend": ".cloudtasks",
    "DatabaseBackend": ".database",
    "DatabaseTaskBackend": ".dbtasks.backend",
    "ImmediateBackend": ".immediate",
    "ThreadingBackend": ".threads",
    "InMemoryBackend": ".memory",
}

__all__ = [
    "Backend",
    "BaseBackend",
    "CeleryBackend",
    "CloudTasksBackend",
    "DatabaseBackend",
    "DatabaseTaskBackend",
    "DjangoTasksBackend",
    "EnqueueRequest",
    "ImmediateBackend",
    "InMemoryBackend",
    "ThreadingBackend",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
