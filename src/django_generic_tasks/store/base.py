"""What every owner of the store shares: its connection, its dialect's statements, datetimes
as the connection binds them, write transactions, and which later tables and columns exist."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .sql import Statements

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from ..models import TaskRun

logger = logging.getLogger("django_generic_tasks.worker")

_READY: set[tuple[Any, ...]] = set()
"""(alias, database name, what) of the tables and columns known to exist (a worker deployed
before ``migrate`` keeps working without them)."""


class UnsupportedDatabaseError(LookupError):
    """The database is not one the store has a dialect for."""


def statements(vendor: str) -> Statements:
    """The statements of the database ``vendor`` (Django's ``connection.vendor``)."""
    if vendor == "postgresql":
        from .sql.postgresql import STATEMENTS
    elif vendor == "sqlite":
        from .sql.sqlite import STATEMENTS
    elif vendor == "mysql":
        from .sql.mysql import STATEMENTS
    else:
        raise UnsupportedDatabaseError(
            f"django-generic-tasks stores runs on PostgreSQL, SQLite, MariaDB and MySQL, "
            f"not on {vendor}."
        )
    return STATEMENTS


class StorePart:
    """One owner of the store's statements, working through one Django connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.alias: str = connection.alias
        self.sql = statements(connection.vendor)

    def dt(self, value: datetime | None) -> Any:
        """``value`` as the connection binds a datetime."""
        return None if value is None else self.connection.ops.adapt_datetimefield_value(value)

    @property
    def runs(self) -> QuerySet[TaskRun]:
        """``TaskRun`` rows on this connection, through the ORM."""
        from ..models import TaskRun

        return TaskRun.objects.using(self.alias)

    @contextmanager
    def write_transaction(self) -> Iterator[Any]:
        """A cursor inside a write transaction. On SQLite (a single writer) it takes the write
        lock up front (``BEGIN IMMEDIATE``), so two worker processes never claim the same run
        and never deadlock upgrading a read lock; inside an atomic block, that block's
        transaction, which already decides when to commit."""
        from django.db import transaction

        connection = self.connection
        if connection.vendor != "sqlite" or connection.in_atomic_block:
            with transaction.atomic(using=self.alias), connection.cursor() as cursor:
                yield cursor
            return
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                # A COMMIT that meets a lock leaves the transaction open: end it either way.
                if connection.connection.in_transaction:
                    cursor.execute("ROLLBACK")
                raise

    def ready(self, what: str, probe: Callable[[], bool], missing: str) -> bool:
        """Whether ``what`` (a table or column of a later migration) exists: ``probe()`` once
        per database until it does; a warning (``missing``) each time it does not."""
        key = (self.alias, self.connection.settings_dict.get("NAME"), what)
        if key in _READY:
            return True
        if probe():
            _READY.add(key)
            return True
        logger.warning(missing)
        return False
