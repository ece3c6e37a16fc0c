"""SQLite: a single writer. Each write takes the write lock up front (``BEGIN IMMEDIATE``), so
two worker processes never claim the same run and never deadlock upgrading a read lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import RunStore


class SQLiteRunStore(RunStore):
    """``RunStore`` on SQLite (3.35 or newer: ``RETURNING``)."""

    @contextmanager
    def write_transaction(self) -> Iterator[Any]:
        """A cursor inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (inside an atomic block: that
        block's transaction, which already decides when to commit)."""
        connection = self.connection
        if connection.in_atomic_block:
            with super().write_transaction() as cursor:
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
