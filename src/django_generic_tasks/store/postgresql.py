"""PostgreSQL: ``COPY`` and one-array-per-column inserts, claims with ``FOR UPDATE SKIP
LOCKED``, a batch of outcomes and its rollups as one statement with a JSON document each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import to_json

from ..core.status import TaskStatus
from .base import CANCELLED, RUNNING, RunStore
from .listen import CANCEL_CHANNEL, WORKERS_CHANNEL
from .rollups import ADDED, COLUMNS, KEY, Rollup, rollups
from .rows import HISTORY_LIMIT, Finished, outcome_row, retry_record
from .schema import table

# From this many rows on, COPY (binds in C) beats INSERT.
COPY_MIN = 50
SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"


class PostgreSQLRunStore(RunStore):
    """``RunStore`` on PostgreSQL."""

    def _bulk_insert(self, rows: list[tuple[Any, ...]]) -> bool:
        if len(rows) < COPY_MIN:
            return False
        columns = table().quoted_columns(self.connection)
        with (
            self.connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {self.table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return True

    def insert_sql(self, rows: list[tuple[Any, ...]], keyed: bool) -> tuple[str, list[Any]]:
        """Several rows: one array per column, a handful of parameters however many rows."""
        if len(rows) == 1:
            return super().insert_sql(rows, keyed)
        return self.statement(0, keyed), [list(column) for column in zip(*rows, strict=True)]

    def build_insert(self, rows: int, keyed: bool) -> str:
        """``rows`` = 0: the one-array-per-column form (``unnest``)."""
        if rows:
            return super().build_insert(rows, keyed)
        arrays = ", ".join(f"%s::{kind}[]" for kind in table().db_types(self.connection))
        sql = (
            f"INSERT INTO {self.table} ({table().quoted_columns(self.connection)}) "
            f"SELECT * FROM unnest({arrays})"
        )
        if keyed:
            sql += " ON CONFLICT DO NOTHING RETURNING id"
        return sql

    def _marks(self) -> list[str]:
        return ["%s::jsonb" if c == "params" else "%s" for c in table().columns]

    def _due_sql(self, queues: Sequence[str], lock: str = "", exclude: Sequence[str] = ()) -> str:
        return super()._due_sql(queues, SKIP_LOCKED, exclude)

    def _claim_cursor(self) -> Any:
        # One autocommitted statement: SKIP LOCKED keeps concurrent claims apart.
        return self.connection.cursor()

    skip_locked = SKIP_LOCKED
    entry_mark = "%s::jsonb"

    def history_append(self, column: str, entry: str, entry_again: str) -> str:
        """``jsonb``: drop the oldest entry (``- 0``) when full, then append."""
        base = f"COALESCE({column}, '[]'::jsonb)"
        return (
            f"CASE WHEN {entry} IS NULL THEN {column} ELSE (CASE WHEN jsonb_array_length({base})"
            f" >= {HISTORY_LIMIT} THEN {base} - 0 ELSE {base} END) || jsonb_build_array("
            f"{entry_again}) END"
        )

    def _finish_batch(
        self, worker_id: str, items: Sequence[Finished], rollup_rows: Sequence[Rollup] | None
    ) -> None:
        """The whole batch travels as one JSON document: one parameter to bind, however many
        runs, so completions cost one round trip and almost no client-side work. Rollups
        (a second, small document) are added by the same statement."""
        sql = (
            f"WITH done AS (UPDATE {self.table} AS t SET status = CASE WHEN v.entry IS NOT NULL "
            f"AND t.cancel_requested_at IS NOT NULL THEN {CANCELLED} ELSE v.status END, "
            "result = NULLIF(v.result, 'null'), error_type = v.error_type, "
            "error_message = v.error_message, error_traceback = v.error_traceback, "
            "finished_at = COALESCE(v.finished_at, CASE WHEN v.entry IS NOT NULL AND "
            "t.cancel_requested_at IS NOT NULL THEN (v.entry->>'ended_at')::timestamptz END), "
            "run_after = COALESCE(v.run_after, t.run_after), lease_expires_at = NULL, "
            f"history = {self.history_append('t.history', 'v.entry', 'v.entry')} "
            "FROM jsonb_to_recordset(%s::jsonb) AS v(id uuid, attempt integer, status text, "
            "result jsonb, error_type text, error_message text, error_traceback text, "
            "finished_at timestamptz, run_after timestamptz, entry jsonb) "
            f"WHERE t.id = v.id AND t.attempt = v.attempt AND t.status = {RUNNING} "
            "AND t.worker_id = %s) "
        )
        records = []
        for item in items:
            row = outcome_row(item)
            record = {
                "id": item.run.id,
                "attempt": item.run.attempt,
                "status": row.status,
                "result": row.result,
                "error_type": row.error_type,
                "error_message": row.error_message,
                "error_traceback": row.error_traceback,
                "finished_at": row.finished_at,
                "run_after": row.run_after,
            }
            if row.finished_at is None:  # a retry: its attempt joins the history
                record["entry"] = retry_record(item, worker_id)
            records.append(record)
        params = [to_json(records, fallback=repr).decode(), worker_id]
        rows = rollups(items) if rollup_rows is None else rollup_rows
        if rows and self.rollups_ready():
            sql += self._rollup_insert()
            added = [dict(zip(COLUMNS, row.values(), strict=True)) for row in rows]
            params.append(to_json(added).decode())
        else:
            sql += "SELECT 1"
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)

    def _rollup_insert(self) -> str:
        """An upsert of the rollup rows given as one JSON document (one parameter)."""
        types = {"task_name": "text", "queue": "text", "outcome": "text", "last_run_id": "text"}
        types["seconds"] = "float8"
        record = ", ".join(f"{c} {types.get(c, 'bigint')}" for c in COLUMNS)
        updates = ", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in ADDED)
        return (
            f"INSERT INTO {self.rollup_table} AS r ({', '.join(COLUMNS)}) "
            f"SELECT {', '.join(COLUMNS)} FROM jsonb_to_recordset(%s::jsonb) AS x({record}) "
            f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {updates}, "
            "last_run_id = EXCLUDED.last_run_id"
        )

    def announce_cancel(self, ids: Sequence[object]) -> None:
        """One ``NOTIFY`` per run, to the worker holding it (sent when the cancel commits)."""
        sql = (
            f"SELECT pg_notify(%s, worker_id || ' ' || id::text) FROM {self.table} "
            f"WHERE id = ANY(%s::uuid[]) AND status = {RUNNING} AND worker_id IS NOT NULL"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [CANCEL_CHANNEL, [str(pk) for pk in ids]])

    def mark_awaited(self, run_id: str) -> None:
        """Ask for a finish notice of ``run_id`` (migration 0009's trigger sends it).

        The mark locks the row for a moment, and a worker claiming meanwhile skips it (``SKIP
        LOCKED``): when the run is still due, the same statement wakes the workers again.
        """
        sql = (
            f"WITH marked AS (UPDATE {self.table} SET awaited_at = now() "
            "WHERE id = %s AND awaited_at IS NULL RETURNING status) "
            "SELECT pg_notify(%s, '') FROM marked WHERE status = %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [run_id, WORKERS_CHANNEL, TaskStatus.READY.value])
