"""The run store: the only code that reads and writes ``TaskRun`` rows.

``DatabaseBackend`` inserts through it, the worker claims, finishes, releases and reclaims
through it, the admin retries, cancels and makes runs due through it, and ``tasks_prune``
deletes through it; the dashboard, ``tasks_status`` and metrics read through it
(``observe.py``, over the per-minute rollups of ``rollups.py``). One dialect per database:
``postgresql``, ``sqlite`` and ``mysql`` (MariaDB >= 10.6, MySQL >= 8); ``base.RunStore``
holds the SQL they share.
"""

from __future__ import annotations

from typing import Any

from .base import RunStore
from .observe import QueueDepth, TaskFigures, WorkerInfo, serves, unserved
from .rows import LOST_ERROR_TYPE, ClaimedRun, Finished, result_json
from .statuses import FINISHED, RETRYABLE, UNFINISHED, WAITING, waiting_status

__all__ = [
    "FINISHED",
    "LOST_ERROR_TYPE",
    "RETRYABLE",
    "UNFINISHED",
    "WAITING",
    "ClaimedRun",
    "Finished",
    "QueueDepth",
    "RunStore",
    "TaskFigures",
    "UnsupportedDatabaseError",
    "WorkerInfo",
    "for_connection",
    "oldest_waiting_age",
    "queue_depth",
    "result_json",
    "serves",
    "unserved",
    "using",
    "waiting_status",
]


class UnsupportedDatabaseError(LookupError):
    """The database is not one the store has a dialect for."""


def _dialect(vendor: str) -> type[RunStore]:
    if vendor == "postgresql":
        from .postgresql import PostgreSQLRunStore

        return PostgreSQLRunStore
    if vendor == "sqlite":
        from .sqlite import SQLiteRunStore

        return SQLiteRunStore
    if vendor == "mysql":
        from .mysql import MySQLRunStore

        return MySQLRunStore
    raise UnsupportedDatabaseError(
        f"django-generic-tasks stores runs on PostgreSQL, SQLite, MariaDB and MySQL, "
        f"not on {vendor}."
    )


_DIALECTS: dict[str, type[RunStore]] = {}


def for_connection(connection: Any) -> RunStore:
    """The store working through the Django ``connection``."""
    vendor = connection.vendor
    dialect = _DIALECTS.get(vendor)
    if dialect is None:
        dialect = _DIALECTS[vendor] = _dialect(vendor)
    return dialect(connection)


def using(database: str = "default") -> RunStore:
    """The store working through the connection alias ``database`` (this thread's)."""
    from django.db import connections

    return for_connection(connections[database])


def queue_depth(database: str = "default") -> dict[tuple[str, str], int]:
    """Gauge callback: unfinished runs now per (queue, state), state ``waiting`` (due, not
    started), ``scheduled`` (waiting for their time) or ``running``.

    Reads only unfinished runs, through the claim and lease indexes, so a long history of
    finished runs costs it nothing. Ready for an OpenTelemetry observable gauge: one
    observation per key, with ``queue`` and ``state`` as attributes.
    """
    from datetime import UTC, datetime

    return using(database).queue_depth_by_status(datetime.now(UTC))


def oldest_waiting_age(database: str = "default") -> dict[str, float]:
    """Gauge callback: per queue with due runs, the seconds its oldest due run has waited
    (the queue's lag). As cheap as ``queue_depth()`` (the same indexes)."""
    from datetime import UTC, datetime

    return using(database).oldest_waiting_age(datetime.now(UTC))
