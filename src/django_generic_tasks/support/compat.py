"""Where this package leans on other projects' private APIs.

Everything here is a fast path or a bridge that a dependency's release could break; each has a
slow, public-API fallback or a test that pins it:

- ``in_atomic_block()`` reads Django's per-thread connection storage
  (``connections._connections``) and asks asyncio whether a loop runs with the private
  ``asyncio._get_running_loop``, to skip asgiref's ``Local`` on ``start()``'s hot path.
- ``thread_sensitive_context(executor)`` uses asgiref's ``ThreadSensitiveContext(executor=)``
  (recent releases, e.g. 3.13) to send one async run's thread-sensitive ``sync_to_async``
  calls (Django's async ORM) to one of the worker's database threads; older asgiref has no such
  argument, and those calls then share asgiref's one process-wide thread (slower, never wrong).
- ``BREADCRUMBS_AS_LIST``: Django 6.1's admin styles breadcrumbs only as
  ``<ol class="breadcrumbs">`` (a ``<div>`` before); the dashboard and Schedules pages write the
  markup of the running version (``django_generic_tasks/breadcrumbs.html``).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from asyncio import _get_running_loop
from concurrent.futures import Executor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

BREADCRUMBS_AS_LIST = django.VERSION >= (6, 1)
"""Whether the admin styles ``<ol class="breadcrumbs">`` (Django 6.1+) or ``<div>`` ones."""

__all__ = ["EXECUTOR_CONTEXTS", "in_atomic_block", "thread_sensitive_context"]

EXECUTOR_CONTEXTS = "executor" in inspect.signature(ThreadSensitiveContext).parameters
"""Whether asgiref's ``ThreadSensitiveContext`` takes an ``executor`` (recent releases)."""


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
