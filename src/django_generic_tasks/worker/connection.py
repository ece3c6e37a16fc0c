"""The worker's database: its connection by alias, its run queue, and which errors are the
database's (the worker waits for it and reconnects) rather than a bug (the worker stops)."""

from __future__ import annotations

import logging
from typing import Any

from ..store import RunQueue, for_connection

logger = logging.getLogger("django_generic_tasks.worker")


def connection_of(database: str) -> Any:
    """This thread's Django connection to ``database`` (an alias of ``DATABASES``)."""
    from django.db import connections

    return connections[database]


def queue_of(database: str) -> RunQueue:
    """The run queue of ``database``, on this thread's connection."""
    return for_connection(connection_of(database)).queue


def close_quietly(database: str) -> None:
    """Close this thread's connection to ``database`` (a broken one raises on close)."""
    try:
        connection_of(database).close()
    except Exception:
        logger.debug("Closing a broken connection failed", exc_info=True)


def reset_queries() -> None:
    """Forget the queries Django records under ``DEBUG`` (a worker would keep them all)."""
    from django.conf import settings
    from django.db import reset_queries as reset

    if settings.DEBUG:
        reset()


def is_db_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of Django's database errors."""
    from django.db import Error

    return isinstance(exc, Error)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` may mean the connection is gone (keep the work, write it later)."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


__all__ = [
    "close_quietly",
    "connection_of",
    "is_connection_error",
    "is_db_error",
    "queue_of",
    "reset_queries",
]
