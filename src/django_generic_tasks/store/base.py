"""``RunStore``: every statement on ``TaskRun``, in SQL that SQLite and most databases accept.

The dialects (``postgresql.py``, ``mysql.py``, ``sqlite.py``) override only what they do
differently: how to insert in bulk, how to claim without two workers taking one run, how to
write a batch of outcomes in one statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..core.status import TaskStatus
from . import statuses as st
from .observe import _READY, Observations, logger
from .operations import Operations
from .rollups import Rollup, rollups
from .rows import (
    HISTORY_LIMIT,
    LOST_ERROR_TYPE,
    LOST_MESSAGE,
    ClaimedRun,
    Finished,
    Reclaimed,
    new_row,
    outcome_row,
    result_json,
    retry_entry,
)
from .schema import id_str, parse_run_id, table
from .statuses import waiting_status
from .transient import retry_transient

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from ..core.enqueue import EnqueueRequest
    from ..execution.attempts import Decision
    from ..models import TaskRun

    LostDecider = Callable[[str, int, int], Decision]
    """``(task_name, attempt, max_attempts) -> Decision`` for a run whose worker was lost."""

# Rows per INSERT: SQLite allows 32,766 bound variables per statement, MySQL 65,535.
CHUNK = 1000
RUNNING = f"'{TaskStatus.RUNNING.value}'"
READY = f"'{TaskStatus.READY.value}'"
SCHEDULED = f"'{TaskStatus.SCHEDULED.value}'"
CANCELLED = f"'{TaskStatus.CANCELLED.value}'"
_GIVEN_BACK = f"CASE WHEN cancel_requested_at IS NULL THEN {{waiting}} ELSE {CANCELLED} END"
"""The status of a run given back unfinished: waiting again, unless its cancel was asked."""
_CANCELLED_AT = "CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE %s END"
_STATEMENTS: dict[tuple[type, int, bool], str] = {}
WAITING_SQL = st.sql_list(st.WAITING)


class RunStore(Operations, Observations):
    """The statements on ``TaskRun`` for one connection (see ``for_connection()``)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.alias: str = connection.alias

    @cached_property
    def table(self) -> str:
        """The quoted table name."""
        return str(self.connection.ops.quote_name(table().name))

    def _dt(self, value: datetime | None) -> Any:
        return None if value is None else self.connection.ops.adapt_datetimefield_value(value)

    def _outcome_values(self, item: Finished) -> list[Any]:
        """An outcome's bind values: status, result, error type, message, traceback, finished_at,
        run_after (the order both finish statements use)."""
        row = outcome_row(item)
        return [
            row.status,
            result_json(row.result),
            row.error_type,
            row.error_message,
            row.error_traceback,
            self._dt(row.finished_at),
            self._dt(row.run_after),
        ]

    @contextmanager
    def write_transaction(self) -> Iterator[Any]:
        """A cursor inside a write transaction."""
        from django.db import transaction

        with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
            yield cursor

    @property
    def objects(self) -> QuerySet[TaskRun]:
        """``TaskRun`` rows on this connection, through the ORM."""
        from ..models import TaskRun

        return TaskRun.objects.using(self.alias)

    # -- starting runs ----------------------------------------------------------------------

    def insert(self, requests: Sequence[EnqueueRequest], now: datetime) -> list[TaskRun | None]:
        """Insert one run per request, in order. Per request: ``None`` when its row was
        written (status per ``statuses.waiting_status``), or the unfinished run of the same
        task that already holds its ``key``."""
        rows = [new_row(self.connection, request, now) for request in requests]
        keyed = any(request.key is not None for request in requests)
        if not keyed and self._bulk_insert(rows):
            return [None] * len(rows)
        found: list[TaskRun | None] = []
        with self.connection.cursor() as cursor:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                sql, params = self.insert_sql(chunk, keyed)
                cursor.execute(sql, params)
                if not keyed:
                    found.extend([None] * len(chunk))
                    continue
                inserted = {id_str(r[0]) for r in cursor.fetchall()}
                for request in requests[start : start + CHUNK]:
                    found.append(None if request.run_id in inserted else self._holder(request))
        return found

    def _bulk_insert(self, rows: list[tuple[Any, ...]]) -> bool:
        """Insert ``rows`` by a dialect's fastest path; ``False`` when it has none for them."""
        return False

    def insert_sql(self, rows: list[tuple[Any, ...]], keyed: bool) -> tuple[str, list[Any]]:
        """One INSERT of ``rows``; ``keyed``: skip rows whose key is taken, return ids."""
        return self.statement(len(rows), keyed), [value for row in rows for value in row]

    def statement(self, rows: int, keyed: bool) -> str:
        """The INSERT text for ``rows`` rows, built once per dialect, size and ``keyed``."""
        cache_key = (type(self), rows, keyed)
        sql = _STATEMENTS.get(cache_key)
        if sql is None:
            if len(_STATEMENTS) > 256:
                _STATEMENTS.clear()
            sql = _STATEMENTS[cache_key] = self.build_insert(rows, keyed)
        return sql

    def build_insert(self, rows: int, keyed: bool) -> str:
        """The INSERT text for ``rows`` rows (see ``statement()``, which caches it)."""
        one = "(" + ", ".join(self._marks()) + ")"
        sql = (
            f"INSERT INTO {self.table} ({table().quoted_columns(self.connection)}) "
            f"VALUES {', '.join([one] * rows)}"
        )
        if keyed:
            sql += " ON CONFLICT DO NOTHING RETURNING id"
        return sql

    def _marks(self) -> list[str]:
        """The placeholder of each column in a VALUES row."""
        return ["%s"] * len(table().columns)

    def _holder(self, request: EnqueueRequest) -> TaskRun | None:
        """The unfinished run holding ``request.key``; insert after all if it just finished."""
        assert request.key is not None
        for _ in range(3):
            run = self.open_run(request.task_name, request.key)
            if run is not None:
                return run
            sql, params = self.insert_sql([new_row(self.connection, request, _now())], True)
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.fetchall():
                    return None
        raise RuntimeError(f"Could not start or find the run with key {request.key!r}.")

    def open_run(self, task_name: str, key: str) -> TaskRun | None:
        """The unfinished run of ``task_name`` that holds ``key``, if any."""
        return (
            self.objects.filter(task_name=task_name, key=key, status__in=st.values(st.UNFINISHED))
            .order_by("pk")
            .first()
        )

    def get(self, run_id: str) -> TaskRun | None:
        """The run ``run_id``; ``None`` when there is none or the id is malformed."""
        pk = parse_run_id(run_id)
        return None if pk is None else self.objects.filter(pk=pk).first()

    # -- the worker -------------------------------------------------------------------------

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
        """Take up to ``limit`` due runs (priority, then ``run_after`` order) of ``queues``
        (empty: all) but not of ``exclude``, and lease them.

        No two claims, from any number of workers, ever return the same run attempt.
        """
        if limit <= 0:
            return []
        sql = (
            f"UPDATE {self.table} SET status = {RUNNING}, attempt = attempt + 1, "
            "worker_id = %s, started_at = %s, lease_expires_at = %s "
            f"WHERE id IN ({self._due_sql(queues, exclude=exclude)}) "
            "RETURNING id, task_name, params, attempt, max_attempts, priority, queue, "
            "trace_context, run_after"
        )
        params = [
            worker_id,
            self._dt(now),
            self._dt(now + timedelta(seconds=lease)),
            *self._due_params(queues, limit, now, exclude),
        ]
        with self._claim_cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return _claimed(rows, 0)

    def _due_sql(self, queues: Sequence[str], lock: str = "", exclude: Sequence[str] = ()) -> str:
        queue_sql = queue_filter_sql(queues, exclude)
        return (
            f"SELECT id FROM {self.table} WHERE status IN {WAITING_SQL} AND run_after <= %s"
            f"{queue_sql} ORDER BY priority DESC, run_after LIMIT %s{lock}"
        )

    def _due_params(
        self, queues: Sequence[str], limit: int, now: datetime, exclude: Sequence[str] = ()
    ) -> list[Any]:
        return [self._dt(now), *queues, *exclude, limit]

    def _claim_cursor(self) -> Any:
        return self.write_transaction()

    @retry_transient
    def finish(
        self,
        worker_id: str,
        items: Sequence[Finished],
        rollup_rows: Sequence[Rollup] | None = None,
    ) -> None:
        """Write outcomes back, only for runs this worker still holds (same attempt), and add
        ``rollup_rows`` (default: the rollups of ``items``; the worker passes several
        batches' worth about once a second, else none) to the per-minute rollups in the same
        transaction."""
        if items and not self.history_ready():
            self._finish_plain(worker_id, items, rollup_rows)
        elif items:
            self._finish_batch(worker_id, items, rollup_rows)
        elif rollup_rows:
            self.write_rollups(rollup_rows)

    def _finish_batch(
        self, worker_id: str, items: Sequence[Finished], rollup_rows: Sequence[Rollup] | None
    ) -> None:
        """``finish()`` of a non-empty batch: one ``UPDATE`` per run, in one transaction.

        A retry of a run whose cancel was requested meanwhile ends it ``cancelled`` instead
        (a run with a pending cancel is never claimed again); an attempt that is retried
        joins the run's ``history``."""
        sql = (
            f"UPDATE {self.table} SET status = CASE WHEN %s IS NULL AND "
            f"cancel_requested_at IS NOT NULL THEN {CANCELLED} ELSE %s END, result = %s, "
            "error_type = %s, error_message = %s, error_traceback = %s, "
            "finished_at = COALESCE(%s, CASE WHEN cancel_requested_at IS NOT NULL THEN %s END), "
            "run_after = COALESCE(%s, run_after), lease_expires_at = NULL, "
            f"history = {self.history_append('history', self.entry_mark, self.entry_mark)} "
            f"WHERE id = %s AND attempt = %s AND status = {RUNNING} AND worker_id = %s"
        )
        rows = []
        for item in items:
            status, result, kind, message, trace, finished, run_after = self._outcome_values(item)
            entry = retry_entry(item, worker_id)
            rows.append(
                [
                    *(finished, status, result, kind, message, trace, finished),
                    *(self._dt(item.at), run_after, *self.history_params(entry)),
                    *(item.run.db_id, item.run.attempt, worker_id),
                ]
            )
        with self.write_transaction() as cursor:
            cursor.executemany(sql, rows)
            self.add_rollups(cursor, rollups(items) if rollup_rows is None else rollup_rows)

    def history_ready(self) -> bool:
        """Whether ``TaskRun.history`` exists (migration 0010 applied). Until it does, outcomes
        are written as before it (no history, no cancel check), so a worker deployed before
        ``migrate`` keeps working."""
        key = (self.alias, self.connection.settings_dict.get("NAME"), "history")
        if key in _READY:
            return True
        with self.connection.cursor() as cursor:
            columns = self.connection.introspection.get_table_description(cursor, table().name)
        if any(column.name == "history" for column in columns):
            _READY.add(key)
            return True
        logger.warning("TaskRun has no history column yet (run migrate)")
        return False

    def _finish_plain(
        self, worker_id: str, items: Sequence[Finished], rollup_rows: Sequence[Rollup] | None
    ) -> None:
        """``finish()`` on a schema older than migration 0010: one ``UPDATE`` per run."""
        sql = (
            f"UPDATE {self.table} SET status = %s, result = %s, error_type = %s, "
            "error_message = %s, error_traceback = %s, finished_at = %s, "
            "run_after = COALESCE(%s, run_after), lease_expires_at = NULL "
            f"WHERE id = %s AND attempt = %s AND status = {RUNNING} AND worker_id = %s"
        )
        rows = [
            [*self._outcome_values(item), item.run.db_id, item.run.attempt, worker_id]
            for item in items
        ]
        with self.write_transaction() as cursor:
            cursor.executemany(sql, rows)
            self.add_rollups(cursor, rollups(items) if rollup_rows is None else rollup_rows)

    def history_append(self, column: str, entry: str, entry_again: str) -> str:
        """SQL: ``column`` (a JSON array, or NULL) with the JSON object ``entry`` appended,
        keeping the last ``HISTORY_LIMIT``; ``column`` unchanged when ``entry`` is NULL
        (``entry_again`` is the same value, for dialects that bind it twice)."""
        base = f"COALESCE({column}, '[]')"
        return (
            f"CASE WHEN {entry} IS NULL THEN {column} ELSE json_insert(CASE WHEN "
            f"json_array_length({base}) >= {HISTORY_LIMIT} THEN json_remove({base}, '$[0]') "
            f"ELSE {base} END, '$[#]', json({entry_again})) END"
        )

    def history_params(self, entry: str | None) -> list[Any]:
        """The bind values of ``history_append()``'s ``entry`` and ``entry_again``."""
        return [entry, entry]

    @retry_transient
    def postpone(self, worker_id: str, run: ClaimedRun, run_after: datetime) -> int:
        """Give back a claimed run this worker did not run to its end (``CapacityExceededError``,
        a lost database connection): the attempt does not count, and the run waits until
        ``run_after`` (or ends ``cancelled`` at once when its cancel was requested)."""
        sql = (
            f"UPDATE {self.table} SET status = {_GIVEN_BACK.format(waiting=SCHEDULED)}, "
            "attempt = attempt - 1, run_after = %s, worker_id = NULL, started_at = NULL, "
            f"finished_at = {_CANCELLED_AT}, lease_expires_at = NULL "
            f"WHERE id = %s AND status = {RUNNING} AND worker_id = %s"
        )
        now = self._dt(_now())
        with self.write_transaction() as cursor:
            cursor.execute(sql, [self._dt(run_after), now, run.db_id, worker_id])
            return int(cursor.rowcount)

    @retry_transient
    def release(self, worker_id: str, runs: Sequence[ClaimedRun]) -> int:
        """Give back claimed runs that never started (the attempt does not count; a run
        whose cancel was requested ends ``cancelled``)."""
        if not runs:
            return 0
        marks = ", ".join(["%s"] * len(runs))
        sql = (
            f"UPDATE {self.table} SET status = {_GIVEN_BACK.format(waiting=READY)}, "
            "attempt = attempt - 1, worker_id = NULL, started_at = NULL, "
            f"finished_at = {_CANCELLED_AT}, lease_expires_at = NULL "
            f"WHERE id IN ({marks}) AND status = {RUNNING} AND worker_id = %s"
        )
        now = self._dt(_now())
        with self.write_transaction() as cursor:
            cursor.execute(sql, [now, *(run.db_id for run in runs), worker_id])
            return int(cursor.rowcount)

    @retry_transient
    def extend_leases(self, worker_id: str, lease: float, now: datetime) -> int:
        """Heartbeat: push back the lease of every run ``worker_id`` holds."""
        sql = (
            f"UPDATE {self.table} SET lease_expires_at = %s "
            f"WHERE status = {RUNNING} AND worker_id = %s"
        )
        with self.write_transaction() as cursor:
            cursor.execute(sql, [self._dt(now + timedelta(seconds=lease)), worker_id])
            return int(cursor.rowcount)

    @retry_transient
    def reclaim_expired(self, decide: LostDecider, now: datetime) -> list[Reclaimed]:
        """Take back the runs whose worker stopped heartbeating (their lease expired) and
        write what became of each, in one transaction (the lost attempt joins the run's
        ``history``).

        ``decide(task_name, attempt, max_attempts)`` is the retry policy's decision for each
        (``attempts.lost_worker_decision``): a retry puts the run back to ``ready`` as a new
        attempt, due at the decision's ``retry_at``; ``FINAL`` fails it (``WorkerLost``). A
        run whose cancel was requested ends ``cancelled`` instead. The store decides nothing.
        """
        stamp = self._dt(now)
        select = (
            "SELECT id, task_name, attempt, max_attempts, worker_id, started_at, "
            f"lease_expires_at, cancel_requested_at FROM {self.table} "
            f"WHERE status = {RUNNING} AND lease_expires_at < %s{self.skip_locked}"
        )
        with self.write_transaction() as cursor:
            cursor.execute(select, [stamp])
            found: list[Reclaimed] = []
            due: dict[str, tuple[str, Any]] = {}  # requeued run id -> (status, run_after)
            for r in cursor.fetchall():
                became = "cancelled"
                if r[7] is None:
                    decision = decide(r[1], int(r[2]), int(r[3]))
                    became = "requeued" if decision.retry else "failed"
                    at = decision.retry_at or now
                    due[id_str(r[0])] = (waiting_status(at, now).value, self._dt(at))
                found.append(
                    Reclaimed(
                        id_str(r[0]),
                        r[0],
                        r[1],
                        int(r[2]),
                        became,
                        _seconds_since(r[6], now),
                        r[4],
                        _aware(r[5]),
                    )
                )
            requeued = [run for run in found if run.became == "requeued"]
            mark = self.entry_mark
            if requeued:
                cursor.executemany(
                    f"UPDATE {self.table} SET status = %s, run_after = %s, "
                    "worker_id = NULL, lease_expires_at = NULL, "
                    f"history = {self.history_append('history', mark, mark)} "
                    f"WHERE id = %s AND status = {RUNNING}",
                    [
                        [*due[run.id], *self.history_params(run.entry(now)), run.db_id]
                        for run in requeued
                    ],
                )
            for became, sets, values in (
                ("cancelled", "", []),
                (
                    "failed",
                    ", error_type = %s, error_message = %s, error_traceback = ''",
                    [LOST_ERROR_TYPE, LOST_MESSAGE],
                ),
            ):
                ids = [run.db_id for run in found if run.became == became]
                if ids:
                    cursor.execute(
                        f"UPDATE {self.table} SET status = '{became}', finished_at = %s, "
                        f"lease_expires_at = NULL{sets} "
                        f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND status = {RUNNING}",
                        [stamp, *values, *ids],
                    )
        return found

    skip_locked = ""
    """Appended to the reaper's ``SELECT``: skip rows another transaction holds."""
    entry_mark = "%s"
    """The placeholder of a history entry (JSON text) bound on its own."""

    def mark_awaited(self, run_id: str) -> None:
        """Ask for a finish notice of ``run_id``: only PostgreSQL sends them (see
        ``store.finish_notices``); elsewhere ``wait()`` polls."""

    def cancel_requested(self, worker_id: str) -> list[str]:
        """The runs ``worker_id`` is running whose cancel was requested (the heartbeat's read,
        through the index on running runs)."""
        sql = (
            f"SELECT id FROM {self.table} WHERE status = {RUNNING} AND worker_id = %s "
            "AND cancel_requested_at IS NOT NULL"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [worker_id])
            return [id_str(row[0]) for row in cursor.fetchall()]


def _claimed(rows: Sequence[Sequence[Any]], attempt_offset: int) -> list[ClaimedRun]:
    runs = [
        ClaimedRun(
            id_str(r[0]),
            r[0],
            r[1],
            r[2],
            int(r[3]) + attempt_offset,
            int(r[4]),
            int(r[5]),
            r[6],
            r[7],
            r[8],
        )
        for r in rows
    ]
    runs.sort(key=lambda run: -run.priority)
    return runs


def _aware(value: Any) -> datetime | None:
    """A datetime as a driver returns it (aware, naive UTC, or SQLite's text) made aware."""
    from datetime import UTC

    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds_since(value: Any, now: datetime) -> float:
    moment = _aware(value)
    return 0.0 if moment is None else max(0.0, (now - moment).total_seconds())


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def queue_filter_sql(queues: Sequence[str], exclude: Sequence[str]) -> str:
    """The claim's ``AND queue [NOT] IN (...)`` conditions; parameters: ``queues``, then
    ``exclude``."""
    sql = f" AND queue IN ({', '.join(['%s'] * len(queues))})" if queues else ""
    if exclude:
        sql += f" AND queue NOT IN ({', '.join(['%s'] * len(exclude))})"
    return sql
