"""The run store: the only code that reads and writes ``TaskRun`` rows and the tables beside it.

Four owners, each its own class on one connection, reached through ``RunStore``:

- ``queue`` (``RunQueue``): insert, claim, finish, postpone, release, extend leases, reclaim
  (``DatabaseBackend`` and the worker);
- ``operations`` (``RunOperations``): the operators' retry, cancel, run now, prune, counts
  (the admin, ``tasks_prune``, ``handle.cancel()``);
- ``observations`` (``Observations``): the per-minute rollups and queue samples, and the reads
  of the dashboard, ``tasks_status`` and metrics;
- ``workers`` (``WorkerRegistry``): the workers' heartbeat rows.

Every statement is written whole in its dialect's module under ``sql/`` (``postgresql``,
``sqlite``, ``mysql``: MariaDB >= 10.6, MySQL >= 8).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from .base import UnsupportedDatabaseError, statements
from .flow import waiting_reason
from .observe import Observations, QueueDepth, TaskFigures
from .operations import RunOperations
from .queue import RunQueue
from .rows import LOST_ERROR_TYPE, ClaimedRun, Finished, result_json
from .statuses import FINISHED, RETRYABLE, UNFINISHED, WAITING, waiting_status
from .workers import WorkerInfo, WorkerRegistry, serves, unserved

__all__ = [
    "FINISHED",
    "LOST_ERROR_TYPE",
    "RETRYABLE",
    "UNFINISHED",
    "WAITING",
    "ClaimedRun",
    "Finished",
    "Observations",
    "QueueDepth",
    "RunOperations",
    "RunQueue",
    "RunStore",
    "TaskFigures",
    "UnsupportedDatabaseError",
    "WorkerInfo",
    "WorkerRegistry",
    "for_connection",
    "oldest_waiting_age",
    "queue_depth",
    "result_json",
    "serves",
    "unserved",
    "using",
    "waiting_reason",
    "waiting_status",
]


def _queue_class(vendor: str) -> type[RunQueue]:
    if vendor == "postgresql":
        from .postgresql import PostgreSQLRunQueue

        return PostgreSQLRunQueue
    if vendor == "mysql":
        from .mysql import MySQLRunQueue

        return MySQLRunQueue
    return RunQueue


class RunStore:
    """The store's four owners on one connection (see ``for_connection()``), each made when
    first used."""

    def __init__(self, connection: Any) -> None:
        statements(connection.vendor)  # an unsupported database fails here, not on first use
        self.connection = connection

    @cached_property
    def queue(self) -> RunQueue:
        """Insert, claim, finish, give back and reclaim runs."""
        return _queue_class(self.connection.vendor)(self.connection, self.observations)

    @cached_property
    def operations(self) -> RunOperations:
        """The operators' retry, cancel, run now, prune and counts."""
        return RunOperations(self.connection, self.queue)

    @cached_property
    def observations(self) -> Observations:
        """Rollups and queue samples, and the dashboard's reads."""
        return Observations(self.connection)

    @cached_property
    def workers(self) -> WorkerRegistry:
        """The workers' heartbeat rows."""
        return WorkerRegistry(self.connection)


def for_connection(connection: Any) -> RunStore:
    """The store working through the Django ``connection``."""
    return RunStore(connection)


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
    return using(database).observations.queue_depth_by_status(datetime.now(UTC))


def oldest_waiting_age(database: str = "default") -> dict[str, float]:
    """Gauge callback: per queue with due runs, the seconds its oldest due run has waited
    (the queue's lag). As cheap as ``queue_depth()`` (the same indexes)."""
    return using(database).observations.oldest_waiting_age(datetime.now(UTC))
