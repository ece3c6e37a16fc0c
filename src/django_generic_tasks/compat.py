"""Where this package leans on other projects' private APIs or keeps old interfaces alive.

Everything here is a fast path or a bridge that a dependency's release could break; each has a
slow, public-API fallback or a test that pins it:

- ``in_atomic_block()`` reads Django's per-thread connection storage
  (``connections._connections``) and asks asyncio whether a loop runs with the private
  ``asyncio._get_running_loop``, to skip asgiref's ``Local`` on ``start()``'s hot path.
- ``BREADCRUMBS_AS_LIST``: Django 6.1's admin styles breadcrumbs only as
  ``<ol class="breadcrumbs">`` (a ``<div>`` before); the dashboard and Schedules pages write the
  markup of the running version (``django_generic_tasks/breadcrumbs.html``).
- ``LegacyBackendAdapter`` wraps a backend of the seed's older releases (only ``run(task)``).
"""

from __future__ import annotations

import threading
from asyncio import _get_running_loop
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import django
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from .exceptions import ResultNotAvailableError
from .status import TaskHandle, TaskStatus

BREADCRUMBS_AS_LIST = django.VERSION >= (6, 1)
"""Whether the admin styles ``<ol class="breadcrumbs">`` (Django 6.1+) or ``<div>`` ones."""

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

    from .enqueue import EnqueueRequest
    from .execution import Outcome

__all__ = ["LegacyBackendAdapter", "in_atomic_block"]

_settings_configured = False  # once true, stays true: skip the lazy settings lookup


def in_atomic_block() -> bool:
    """Whether the default database connection of this thread/context is in ``atomic()``."""
    global _settings_configured
    if not _settings_configured:
        if not settings.configured:
            return False
        _settings_configured = True
    # ``connections[alias]`` goes through asgiref's Local, which asks asyncio for a running
    # loop by catching a RuntimeError on every call. Outside an event loop that Local is a
    # plain threading.local: read it directly (no connection object yet: no atomic block).
    storage = getattr(connections._connections, "_storage", None)  # type: ignore[attr-defined]
    if type(storage) is threading.local and _get_running_loop() is None:
        connection = getattr(storage, DEFAULT_DB_ALIAS, None)
        return connection is not None and bool(connection.in_atomic_block)
    return bool(connections[DEFAULT_DB_ALIAS].in_atomic_block)


class LegacyBackendAdapter:
    """Wraps a backend of the seed's older releases, which had only ``run(task)``.

    It honours no ``start()`` option and keeps no results; each run is handed over whole
    (the legacy backend applies no retry policy).
    """

    supports_defer = False
    supports_priority = False
    supports_key = False
    supports_results = False
    supports_retries = False
    enqueues_in_transaction = False

    def __init__(self, legacy: Any) -> None:
        self.legacy = legacy

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Rebuild the task and pass it to the legacy backend's ``run(task)``."""
        from .registry import get_task_class

        task_class = get_task_class(request.task_name)
        self.legacy.run(
            task_class(task_class.params_model.model_validate_json(request.params_json))
        )
        return TaskHandle(request.run_id, request.task_name, TaskStatus.READY, self)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Hand the runs over one after the other."""
        return [self.enqueue(request) for request in requests]

    def requeue(self, request: EnqueueRequest) -> None:
        """Never called: the legacy backend does not retry."""
        self.enqueue(request)

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Nothing is kept."""

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """Legacy backends keep no results."""
        raise ResultNotAvailableError(f"{type(self).__name__} does not keep task results.")

    def check(self) -> list[CheckMessage]:
        """Nothing to check."""
        return []

    def __repr__(self) -> str:
        return f"<LegacyBackendAdapter {self.legacy!r}>"
