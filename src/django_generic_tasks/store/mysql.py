"""MariaDB >= 10.6 and MySQL >= 8: claims with ``SELECT ... FOR UPDATE SKIP LOCKED`` then an
``UPDATE`` in one transaction (neither has ``UPDATE ... RETURNING``), keyed inserts with
``INSERT IGNORE ... RETURNING`` (MariaDB), a batch of outcomes in one ``UPDATE ... JOIN``
and its rollups with ``ON DUPLICATE KEY UPDATE``.

Neither has partial indexes: migration 0003 adds generated columns instead (``open_key``: the
key while the run is unfinished, unique with ``task_name``; ``waiting``: 1 while claimable,
leading the claim index).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .base import CANCELLED, RUNNING, RunStore, _claimed, queue_filter_sql
from .rollups import ADDED, COLUMNS, Rollup, rollups
from .rows import HISTORY_LIMIT, ClaimedRun, Finished, new_row, retry_entry
from .transient import retry_transient


class MySQLRunStore(RunStore):
    """``RunStore`` on MariaDB (10.6+) or MySQL (8+)."""

    def build_insert(self, rows: int, keyed: bool) -> str:
        """``INSERT IGNORE`` skips only duplicate keys here: lengths were checked before, and
        every other value comes from the library, not the caller."""
        sql = super().build_insert(rows, False)
        if keyed and self.connection.mysql_is_mariadb:
            # MySQL has no INSERT ... RETURNING: there keyed requests go one by one (insert).
            sql = "INSERT IGNORE" + sql.removeprefix("INSERT") + " RETURNING id"
        return sql

    def insert(self, requests: Sequence[Any], now: datetime) -> list[Any]:
        """As ``RunStore.insert``; on MySQL, keyed requests go one by one (no RETURNING)."""
        if self.connection.mysql_is_mariadb or all(r.key is None for r in requests):
            return super().insert(requests, now)
        return [self._insert_keyed(request, now) for request in requests]

    def _insert_keyed(self, request: Any, now: datetime) -> Any:
        from django.db import IntegrityError, transaction

        for _ in range(3):
            sql, params = self.insert_sql([new_row(self.connection, request, now)], False)
            try:
                with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                    cursor.execute(sql, params)
                return None
            except IntegrityError:
                run = self.open_run(request.task_name, request.key)
                if run is not None:
                    return run
        raise RuntimeError(f"Could not start or find the run with key {request.key!r}.")

    def open_run(self, task_name: str, key: str) -> Any:
        """Compares keys byte for byte, trailing spaces included, as the unique index does
        (``open_key``, NO PAD since migration 0010)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {self.table} WHERE task_name = %s AND open_key = %s",
                [task_name, key],
            )
            row = cursor.fetchone()
        return None if row is None else self.objects.filter(pk=row[0]).first()

    @retry_transient
    def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        now: datetime,
        exclude: Sequence[str] = (),
    ) -> list[ClaimedRun]:
        """Lock due runs (skipping runs other claims hold), then mark them running."""
        if limit <= 0:
            return []
        queue_sql = queue_filter_sql(queues, exclude)
        select = (
            "SELECT id, task_name, params, attempt, max_attempts, priority, queue, trace_context, "
            "run_after "
            f"FROM {self.table} WHERE waiting = 1 AND run_after <= %s{queue_sql} "
            "ORDER BY priority DESC, run_after LIMIT %s FOR UPDATE SKIP LOCKED"
        )
        with self.write_transaction() as cursor:
            cursor.execute(select, [self._dt(now), *queues, *exclude, limit])
            rows = cursor.fetchall()
            if not rows:
                return []
            marks = ", ".join(["%s"] * len(rows))
            cursor.execute(
                f"UPDATE {self.table} SET status = {RUNNING}, attempt = attempt + 1, "
                f"worker_id = %s, started_at = %s, lease_expires_at = %s WHERE id IN ({marks})",
                [
                    worker_id,
                    self._dt(now),
                    self._dt(now + timedelta(seconds=lease)),
                    *(r[0] for r in rows),
                ],
            )
        return _claimed(rows, 1)

    def _finish_batch(
        self, worker_id: str, items: Sequence[Finished], rollup_rows: Sequence[Rollup] | None
    ) -> None:
        """One ``UPDATE ... JOIN`` of the batch, given as a derived table."""
        one = (
            "SELECT %s AS id, %s AS attempt, %s AS status, %s AS result, %s AS error_type, "
            "%s AS error_message, %s AS error_traceback, %s AS finished_at, %s AS run_after, "
            "%s AS entry, %s AS at"
        )
        params: list[Any] = []
        for item in items:
            params += [item.run.db_id, item.run.attempt, *self._outcome_values(item)]
            params += [retry_entry(item, worker_id), self._dt(item.at)]
        cancelled = "v.entry IS NOT NULL AND t.cancel_requested_at IS NOT NULL"
        sql = (
            f"UPDATE {self.table} AS t JOIN ({' UNION ALL '.join([one] * len(items))}) AS v "
            "ON t.id = v.id AND t.attempt = v.attempt "
            f"SET t.status = CASE WHEN {cancelled} THEN {CANCELLED} ELSE v.status END, "
            "t.result = v.result, t.error_type = v.error_type, "
            "t.error_message = v.error_message, t.error_traceback = v.error_traceback, "
            f"t.finished_at = COALESCE(v.finished_at, CASE WHEN {cancelled} THEN v.at END), "
            "t.run_after = COALESCE(v.run_after, t.run_after), t.lease_expires_at = NULL, "
            f"t.history = {self.history_append('t.history', 'v.entry', 'v.entry')} "
            f"WHERE t.status = {RUNNING} AND t.worker_id = %s"
        )
        with self.write_transaction() as cursor:
            cursor.execute(sql, [*params, worker_id])
            self.add_rollups(cursor, rollups(items) if rollup_rows is None else rollup_rows)

    skip_locked = " FOR UPDATE SKIP LOCKED"

    def history_append(self, column: str, entry: str, entry_again: str) -> str:
        """``JSON_ARRAY_APPEND`` of the entry parsed as JSON (not as a string)."""
        base = f"COALESCE({column}, JSON_ARRAY())"
        return (
            f"CASE WHEN {entry} IS NULL THEN {column} ELSE JSON_ARRAY_APPEND(CASE WHEN "
            f"JSON_LENGTH({base}) >= {HISTORY_LIMIT} THEN JSON_REMOVE({base}, '$[0]') "
            f"ELSE {base} END, '$', JSON_EXTRACT({entry_again}, '$')) END"
        )

    def rollup_upsert_sql(self, rows: int) -> str:
        """``ON DUPLICATE KEY UPDATE``: MariaDB and MySQL have no ``ON CONFLICT``."""
        one = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
        updates = ", ".join(f"{c} = {c} + VALUES({c})" for c in ADDED)
        return (
            f"INSERT INTO {self.rollup_table} ({', '.join(COLUMNS)}) "
            f"VALUES {', '.join([one] * rows)} ON DUPLICATE KEY UPDATE {updates}, "
            "last_run_id = VALUES(last_run_id)"
        )

    def _div(self, expression: str, divisor: int) -> str:
        return f"({expression}) DIV {int(divisor)}"
