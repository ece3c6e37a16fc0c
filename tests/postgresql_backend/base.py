"""Django's PostgreSQL backend, emptying the tables between tests with ``DELETE``.

pytest-django empties every table after each transactional test. ``TRUNCATE`` of the ~40
tables takes 0.1 to 0.6 s on this machine (new files for each table and index); ``DELETE`` of a
test's few rows takes ~1 ms, which is what Django's own MySQL backend does for the same reason.
A ``LOCK TABLE`` first waits for transactions still writing, as ``TRUNCATE`` does. Django
creates its foreign keys ``DEFERRABLE INITIALLY DEFERRED`` and flushes in one transaction, so
the order of the deletes does not matter. Everything else, ``vendor`` included, is Django's
backend. (Unlike ``TRUNCATE``, ``DELETE`` keeps the planner's statistics of small tables: that
found a claim that took every due run, ``tests/unit/test_claim_plans.py``.)
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    """``sql_flush`` by ``LOCK TABLE`` and ``DELETE`` unless sequences are to be reset."""

    def sql_flush(
        self,
        style: Any,
        tables: list[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        """Lock the tables, then ``DELETE FROM`` each (``TRUNCATE`` to reset sequences)."""
        if reset_sequences or not tables:
            return super().sql_flush(
                style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        names = [style.SQL_FIELD(self.quote_name(table)) for table in tables]
        lock = f"{style.SQL_KEYWORD('LOCK TABLE')} {', '.join(names)} IN ACCESS EXCLUSIVE MODE;"
        delete = f"{style.SQL_KEYWORD('DELETE')} {style.SQL_KEYWORD('FROM')}"
        return [lock, *(f"{delete} {name};" for name in names)]


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL wrapper with the operations above."""

    ops_class = DatabaseOperations
