"""Where this package leans on other projects' private APIs.

Everything here is a fast path or a bridge that a dependency's release could break; each has a
slow, public-API fallback or a test that pins it:

- ``in_atomic_block()`` reads Django's per-thread connection storage
  (``connections._connections``) and asks asyncio whether a loop runs with the private
  ``asyncio._get_running_loop``, to skip asgiref's ``Local`` on ``start()``'s hot path.
- ``ThreadSensitivePool`` sends one async run's thread-sensitive ``sync_to_async`` calls
  (Django's async ORM) to one of a few single-thread executors. Its fast path sets asgiref's
  ``SyncToAsync.thread_sensitive_context`` context variable to a context registered once per
  executor in ``SyncToAsync.context_to_thread_executor`` (a contextvar set per run, where
  entering a ``ThreadSensitiveContext`` reads asgiref's ``Local`` at ~50 µs); without those
  names, the public ``ThreadSensitiveContext(executor=)`` (recent asgiref), else nothing: the
  calls then share asgiref's one process-wide thread (slower, never wrong).
- ``BREADCRUMBS_AS_LIST``: Django 6.1's admin styles breadcrumbs only as
  ``<ol class="breadcrumbs">`` (a ``<div>`` before); the dashboard and Schedules pages write the
  markup of the running version (``django_generic_tasks/breadcrumbs.html``).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import threading
from asyncio import _get_running_loop
from collections.abc import MutableMapping
from concurrent.futures import Executor
from typing import Any

import django
from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

BREADCRUMBS_AS_LIST = django.VERSION >= (6, 1)
"""Whether the admin styles ``<ol class="breadcrumbs">`` (Django 6.1+) or ``<div>`` ones."""

__all__ = [
    "EXECUTOR_CONTEXTS",
    "FAST_THREAD_SENSITIVE",
    "ThreadSensitivePool",
    "in_atomic_block",
    "thread_sensitive_context",
]

EXECUTOR_CONTEXTS = "executor" in inspect.signature(ThreadSensitiveContext).parameters
"""Whether asgiref's ``ThreadSensitiveContext`` takes an ``executor`` (recent releases)."""
FAST_THREAD_SENSITIVE = isinstance(
    getattr(SyncToAsync, "thread_sensitive_context", None), contextvars.ContextVar
) and isinstance(getattr(SyncToAsync, "context_to_thread_executor", None), MutableMapping)
"""Whether asgiref has the two names ``ThreadSensitivePool``'s fast path sets."""


class ThreadSensitivePool:
    """Executors (one thread each) that async runs' thread-sensitive ``sync_to_async``
    calls go to: ``bind(index)`` inside a run's task sends its calls to executor ``index``."""

    def __init__(self, executors: list[Executor]) -> None:
        self.executors = executors
        self._contexts: list[Any] = []
        if FAST_THREAD_SENSITIVE:
            for executor in executors:
                context = ThreadSensitiveContext()
                SyncToAsync.context_to_thread_executor[context] = executor
                self._contexts.append(context)  # kept: the mapping holds them weakly

    def bind(self, index: int) -> Any:
        """An async context manager for the body of one run: its thread-sensitive calls go
        to executor ``index`` (this task's context only: each asyncio task has its own)."""
        if self._contexts:
            SyncToAsync.thread_sensitive_context.set(self._contexts[index])
            return contextlib.nullcontext()
        return thread_sensitive_context(self.executors[index])


def thread_sensitive_context(executor: Executor) -> Any:
    """An async context manager in which thread-sensitive ``sync_to_async`` calls run on
    ``executor`` (one thread); a no-op where asgiref cannot do that."""
    if EXECUTOR_CONTEXTS:
        return ThreadSensitiveContext(executor=executor)  # type: ignore[call-arg,unused-ignore]
    return contextlib.nullcontext()


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
