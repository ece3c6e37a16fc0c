"""The run queue on PostgreSQL: ``COPY`` and one-array-per-column inserts, claims in one
autocommitted statement, a batch of outcomes and its rollups as one statement with a JSON
document each (the statements: ``sql/postgresql.py``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from pydantic_core import to_json

from .queue import RunQueue
from .rollups import COLUMNS, Rollup
from .rows import OUTCOME_COLUMNS, Finished, outcome_values, retry_record
from .schema import id_str
from .sql import postgresql as sql

SEEN_FOR = 1.0
"""Seconds during which a batch that had workflow members (or made a workflow go on) steers
the next batches to the statement it needed: plain batches use the cheapest statement, and
while members are around the try that would find them again is skipped."""
_MEMBERS_SEEN: dict[tuple[str, Any], float] = {}
"""(alias, database) -> when a batch last had workflow members (a hint, not a state: a wrong
guess costs one statement)."""
_FOLLOW_UPS_SEEN: dict[tuple[str, Any], float] = {}
"""(alias, database) -> when a batch last made a workflow go on (a chain's next step, a
callback: the workflows' transaction)."""

COPY_MIN = 50
"""From this many rows on, ``COPY`` (binds in C) beats ``INSERT``."""


def _as_is(value: Any) -> Any:
    return value


class PostgreSQLRunQueue(RunQueue):
    """``RunQueue`` on PostgreSQL."""

    def _bulk_insert(self, new_rows: list[tuple[Any, ...]]) -> bool:
        if len(new_rows) < COPY_MIN:
            return False
        with self.connection.cursor() as cursor, cursor.cursor.copy(sql.COPY) as copy:
            for row in new_rows:
                copy.write_row(row)
        return True

    def _insert_statement(
        self, new_rows: list[tuple[Any, ...]], keyed: bool
    ) -> tuple[str, list[Any]]:
        """Several rows: one array per column, a handful of parameters however many rows."""
        if len(new_rows) == 1:
            return super()._insert_statement(new_rows, keyed)
        arrays = [list(column) for column in zip(*new_rows, strict=True)]
        return (sql.INSERT_ARRAYS_KEYED if keyed else sql.INSERT_ARRAYS), arrays

    def _claim_cursor(self) -> Any:
        # One autocommitted statement: SKIP LOCKED keeps concurrent claims apart.
        return self.connection.cursor()

    def _finish(self, worker_id: str, items: Sequence[Finished], added: Sequence[Rollup]) -> None:
        """The whole batch travels as one JSON document: one parameter to bind, however many
        runs, so completions cost one round trip and almost no client-side work. Rollups
        (a second, small document) are added by the same statement."""
        records = []
        for item in items:
            values = outcome_values(_as_is, item)
            record = dict(zip(OUTCOME_COLUMNS, values, strict=True))
            record["id"] = item.run.id
            record["attempt"] = item.run.attempt
            if values[5] is None:  # no finished_at: a retry, whose attempt joins the history
                record["entry"] = retry_record(item, worker_id)
                if item.outcome.decision.snooze:
                    record["extra"] = 1
            records.append(record)
        params = [to_json(records, fallback=repr).decode(), worker_id]
        statement = sql.FINISH
        if added and self.observations.rollups_ready():
            statement = sql.FINISH_WITH_ROLLUPS
            rows = [dict(zip(COLUMNS, row.values(), strict=True)) for row in added]
            params.append(to_json(rows).decode())
        # A batch whose workflow members make their workflows go on (a chain's next step, a
        # group's callback) is written in one transaction with what starts next; any other
        # stays one autocommitted statement: without members the cheapest, with members that
        # only count the one that counts them. Each writes nothing when the batch needs the
        # next (then that one writes it).
        if not self.workflows.exists():  # before migration 0012
            with self.connection.cursor() as cursor:
                cursor.execute(statement, params)
            return
        rollups = statement is not sql.FINISH
        key = (self.alias, self.connection.settings_dict.get("NAME"))
        now = time.monotonic()
        if now - _FOLLOW_UPS_SEEN.get(key, -60.0) > SEEN_FOR:
            if now - _MEMBERS_SEEN.get(key, -60.0) > SEEN_FOR:
                unless = (
                    sql.FINISH_WITH_ROLLUPS_UNLESS_MEMBERS if rollups else sql.FINISH_UNLESS_MEMBERS
                )
                with self.connection.cursor() as cursor:
                    cursor.execute(unless, params)
                    (members,) = cursor.fetchone()
                if not members:
                    return
                _MEMBERS_SEEN[key] = now
            counting = sql.FINISH_WITH_ROLLUPS_COUNTING if rollups else sql.FINISH_COUNTING
            with self.connection.cursor() as cursor:
                cursor.execute(counting, params)
                (written,) = cursor.fetchone()
            if written:
                return
            _FOLLOW_UPS_SEEN[key] = now
        advancing = sql.FINISH_WITH_ROLLUPS_ADVANCING if rollups else sql.FINISH_ADVANCING
        with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
            cursor.execute(advancing, params)
            found = cursor.fetchall()
            counted = {id_str(row[1]): row[9:] for row in found}
            self.workflows.members_counted(cursor, [row[:9] for row in found], self, counted)
