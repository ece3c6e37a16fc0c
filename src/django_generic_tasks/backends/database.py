"""``DatabaseBackend``: each start is a ``TaskRun`` row, written in the caller's transaction.

Run the worker with ``python manage.py tasks_worker``. Needs ``django_generic_tasks`` in
``INSTALLED_APPS`` and its migrations applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from django.core.checks import CheckMessage
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning

from ..exceptions import ConfigurationError, RunNotFoundError
from ..status import TaskHandle, TaskStatus
from .base import BaseBackend, EnqueueRequest

TABLE = "django_generic_tasks_taskrun"
COLUMNS = (
    "id",
    "task_name",
    "params",
    "queue",
    "priority",
    "status",
    "attempt",
    "max_attempts",
    "timeout",
    "run_after",
    "created_at",
    "error_type",
    "error_message",
    "error_traceback",
    "key",
)
_QUOTED_COLUMNS = ", ".join(f'"{column}"' for column in COLUMNS)
_PG_TYPES = (
    "uuid",
    "varchar",
    "jsonb",
    "varchar",
    "smallint",
    "varchar",
    "integer",
    "integer",
    "float8",
    "timestamptz",
    "timestamptz",
    "varchar",
    "text",
    "text",
    "varchar",
)
# From this many rows on, PostgreSQL gets COPY (binds in C) rather than INSERT.
_COPY_MIN = 50
# Rows per INSERT: SQLite allows 32,766 bound variables per statement.
_CHUNK = 1000


class DatabaseBackend(BaseBackend):
    """Stores runs in the database (``TaskRun``); ``manage.py tasks_worker`` runs them.

    ``start()`` inserts the row in the caller's transaction: a rollback leaves no run, a commit
    makes it visible to workers at once. ``database`` picks the connection alias.
    """

    supports_defer = True
    supports_priority = True
    supports_key = True
    supports_results = True
    supports_retries = True
    enqueues_in_transaction = True
    crash_safe: ClassVar[bool] = True
    needs_server: ClassVar[str] = "your database, `tasks_worker`"

    def __init__(self, database: str = "default") -> None:
        if not isinstance(database, str) or not database:
            raise ConfigurationError("DatabaseBackend(database=...) must be a connection alias.")
        self.database = database

    def __repr__(self) -> str:
        return f"<DatabaseBackend database={self.database!r}>"

    @property
    def connection(self) -> Any:
        """The Django connection runs are written through."""
        from django.db import connections

        return connections[self.database]

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        """Insert one run; with a ``key``, return the unfinished run that already holds it."""
        return self.enqueue_many([request])[0]

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle]:
        """Insert many runs, in one statement per 1,000; one handle per request, in order."""
        if not requests:
            return []
        connection = self.connection
        now = datetime.now(UTC)
        rows = [_row(connection, request, now) for request in requests]
        keyed = any(request.key is not None for request in requests)
        handles: list[TaskHandle] = []
        with connection.cursor() as cursor:
            if not keyed and connection.vendor == "postgresql" and len(rows) >= _COPY_MIN:
                _copy(cursor, rows)
                return [self.handle_for(request, _status_for(request, now)) for request in requests]
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                sql, params = _insert_sql(connection, chunk, keyed)
                cursor.execute(sql, params)
                inserted = {_id_str(r[0]) for r in cursor.fetchall()} if keyed else None
                for request in requests[start : start + _CHUNK]:
                    if inserted is None or request.run_id in inserted:
                        handles.append(self.handle_for(request, _status_for(request, now)))
                    else:
                        handles.append(self._existing(request))
        return handles

    def _existing(self, request: EnqueueRequest) -> TaskHandle:
        """The unfinished run holding ``request.key``; insert after all if it just finished."""
        from ..models import UNFINISHED, TaskRun

        for _ in range(3):
            run = (
                TaskRun.objects.using(self.database)
                .filter(key=request.key, status__in=[s.value for s in UNFINISHED])
                .first()
            )
            if run is not None:
                return run.to_handle(self)
            connection = self.connection
            sql, params = _insert_sql(
                connection, [_row(connection, request, datetime.now(UTC))], True
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.fetchall():
                    return self.handle_for(request)
        raise RuntimeError(f"Could not start or find the run with key {request.key!r}.")

    def get_result(self, run_id: str) -> TaskHandle:
        """A fresh handle for ``run_id``; ``RunNotFoundError`` when there is no such run."""
        from ..models import TaskRun

        try:
            pk = uuid.UUID(str(run_id))
        except ValueError:
            raise RunNotFoundError(f"{run_id!r} is not a task run id.") from None
        run = TaskRun.objects.using(self.database).filter(pk=pk).first()
        if run is None:
            raise RunNotFoundError(f"There is no task run {run_id}.")
        return run.to_handle(self)

    def check(self) -> list[CheckMessage]:
        """The app must be installed and the database alias configured."""
        from django.apps import apps
        from django.conf import settings

        messages: list[CheckMessage] = []
        if not apps.is_installed("django_generic_tasks"):
            messages.append(
                CheckError(
                    "DatabaseBackend needs 'django_generic_tasks' in INSTALLED_APPS.",
                    hint="Add it, then run `python manage.py migrate`.",
                    id="django_generic_tasks.E100",
                )
            )
        if self.database not in settings.DATABASES:
            messages.append(
                CheckError(
                    f"DatabaseBackend's database {self.database!r} is not in DATABASES.",
                    id="django_generic_tasks.E101",
                )
            )
        elif self.connection.vendor not in ("postgresql", "sqlite"):
            messages.append(
                CheckWarning(
                    f"DatabaseBackend is tested on PostgreSQL and SQLite, not on "
                    f"{self.connection.vendor}; its worker falls back to plain ORM claims there.",
                    id="django_generic_tasks.W102",
                )
            )
        return messages


def _status_for(request: EnqueueRequest, now: datetime) -> TaskStatus:
    if request.run_after is not None and request.run_after > now:
        return TaskStatus.SCHEDULED
    return TaskStatus.READY


def db_id(connection: Any, run_id: str) -> Any:
    """``run_id`` as the database stores it (native UUID, or 32 hex digits on SQLite)."""
    if connection.features.has_native_uuid_field:
        return run_id
    return uuid.UUID(run_id).hex


def _id_str(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _row(connection: Any, request: EnqueueRequest, now: datetime) -> tuple[Any, ...]:
    adapt = connection.ops.adapt_datetimefield_value
    run_after = request.run_after or now
    return (
        db_id(connection, request.run_id),
        request.task_name,
        request.params_json,
        request.queue,
        request.priority,
        _status_for(request, now).value,
        request.attempt - 1,
        request.max_attempts,
        request.timeout,
        adapt(run_after),
        adapt(now),
        "",
        "",
        "",
        request.key,
    )


def _copy(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    with cursor.cursor.copy(f"COPY {TABLE} ({_QUOTED_COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_sql(connection: Any, rows: list[tuple[Any, ...]], keyed: bool) -> tuple[str, list[Any]]:
    pg = connection.vendor == "postgresql"
    if pg and len(rows) > 1:
        # One array per column: a handful of parameters however many rows (fast to bind).
        return _statement(True, 0, keyed), [list(column) for column in zip(*rows, strict=True)]
    return _statement(pg, len(rows), keyed), [value for row in rows for value in row]


@lru_cache(maxsize=64)
def _statement(pg: bool, rows: int, keyed: bool) -> str:
    """The INSERT for ``rows`` rows (0: PostgreSQL's one-array-per-column form)."""
    sql = f"INSERT INTO {TABLE} ({_QUOTED_COLUMNS}) "
    if rows == 0:
        sql += f"SELECT * FROM unnest({', '.join(f'%s::{kind}[]' for kind in _PG_TYPES)})"
    else:
        cast = "::jsonb" if pg else ""
        one = "(" + ", ".join("%s" + cast if c == "params" else "%s" for c in COLUMNS) + ")"
        sql += "VALUES " + ", ".join([one] * rows)
    if keyed:
        sql += " ON CONFLICT DO NOTHING RETURNING id"
    return sql
