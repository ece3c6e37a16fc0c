"""The worker's SQL: claim runs in batches, finish them in batches, leases, releases.

PostgreSQL claims with one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`` and finishes a batch with one ``UPDATE ... FROM (VALUES ...)``. SQLite has a single
writer: each write takes the lock up front (``BEGIN IMMEDIATE``), so two worker processes never
claim the same run. Other databases use the ORM inside a transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_json

from ..backends.database import TABLE
from ..execution import Outcome
from ..status import TaskStatus

WAITING_SQL = "('scheduled', 'ready')"
LOST_ERROR_TYPE = "django_generic_tasks.WorkerLost"


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run this worker holds a lease on."""

    id: str
    db_id: Any
    task_name: str
    params: Any
    attempt: int
    max_attempts: int
    priority: int


@dataclass(frozen=True, slots=True)
class Finished:
    """An outcome waiting to be written back."""

    run: ClaimedRun
    outcome: Outcome
    at: datetime


def _pg(connection: Any) -> bool:
    return bool(connection.vendor == "postgresql")


def _sqlite(connection: Any) -> bool:
    return bool(connection.vendor == "sqlite")


def _dt(connection: Any, value: datetime | None) -> Any:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


@contextmanager
def write_transaction(connection: Any) -> Iterator[Any]:
    """A cursor inside a write transaction (SQLite: take the write lock first)."""
    from django.db import transaction

    if _sqlite(connection):
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        return
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        yield cursor


def claim(
    connection: Any,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    lease: float,
    now: datetime,
) -> list[ClaimedRun]:
    """Take up to ``limit`` due runs (priority, then ``run_after`` order) and lease them."""
    if limit <= 0:
        return []
    if not (_pg(connection) or _sqlite(connection)):
        return _claim_orm(connection, worker_id, queues, limit, lease, now)
    queue_sql = ""
    queue_params: list[Any] = []
    if queues:
        queue_sql = " AND queue IN (" + ", ".join(["%s"] * len(queues)) + ")"
        queue_params = list(queues)
    skip = " FOR UPDATE SKIP LOCKED" if _pg(connection) else ""
    sql = (
        f"UPDATE {TABLE} SET status = 'running', attempt = attempt + 1, worker_id = %s, "
        "started_at = %s, lease_expires_at = %s "
        f"WHERE id IN (SELECT id FROM {TABLE} WHERE status IN {WAITING_SQL} "
        f"AND run_after <= %s{queue_sql} ORDER BY priority DESC, run_after LIMIT %s{skip}) "
        "RETURNING id, task_name, params, attempt, max_attempts, priority"
    )
    params = [
        worker_id,
        _dt(connection, now),
        _dt(connection, now + timedelta(seconds=lease)),
        _dt(connection, now),
        *queue_params,
        limit,
    ]
    # SKIP LOCKED keeps PostgreSQL workers apart; SQLite needs its single-writer transaction.
    cursor_context = connection.cursor() if _pg(connection) else write_transaction(connection)
    with cursor_context as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    runs = [
        ClaimedRun(_id_str(r[0]), r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows
    ]
    runs.sort(key=lambda run: -run.priority)
    return runs


def _claim_orm(
    connection: Any,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    lease: float,
    now: datetime,
) -> list[ClaimedRun]:
    from django.db import transaction
    from django.db.models import F

    from ..models import WAITING, TaskRun

    manager = TaskRun.objects.using(connection.alias)
    with transaction.atomic(using=connection.alias):
        waiting = manager.filter(status__in=[s.value for s in WAITING], run_after__lte=now)
        if queues:
            waiting = waiting.filter(queue__in=list(queues))
        skip = connection.features.has_select_for_update_skip_locked
        ids = list(
            waiting.order_by("-priority", "run_after")
            .select_for_update(skip_locked=skip)
            .values_list("id", flat=True)[:limit]
        )
        manager.filter(id__in=ids).update(
            status=TaskStatus.RUNNING.value,
            attempt=F("attempt") + 1,
            worker_id=worker_id,
            started_at=now,
            lease_expires_at=now + timedelta(seconds=lease),
        )
        rows = manager.filter(id__in=ids).order_by("-priority", "run_after")
        return [
            ClaimedRun(
                str(r.id), r.id, r.task_name, r.params, r.attempt, r.max_attempts, r.priority
            )
            for r in rows
        ]


def _id_str(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def result_json(result: Any) -> str | None:
    """The JSON stored for a task's return value (``None`` stays SQL NULL)."""
    if result is None:
        return None
    return to_json(result, fallback=repr).decode()


def _values(connection: Any, item: Finished) -> tuple[Any, ...]:
    outcome = item.outcome
    error = outcome.error
    finished = None if outcome.status is TaskStatus.SCHEDULED else item.at
    return (
        item.run.db_id,
        item.run.attempt,
        outcome.status.value,
        result_json(outcome.result) if outcome.status is TaskStatus.SUCCEEDED else None,
        error.type if error else "",
        error.message if error else "",
        error.traceback if error else "",
        _dt(connection, finished),
        _dt(connection, outcome.retry_at),
    )


def finish(connection: Any, worker_id: str, items: Sequence[Finished]) -> None:
    """Write outcomes back, only for runs this worker still holds (same attempt)."""
    if not items:
        return
    if _pg(connection):
        # The whole batch travels as one JSON document: one parameter to bind, however many
        # runs, so completions cost one round trip and almost no client-side work.
        sql = (
            f"UPDATE {TABLE} AS t SET status = v.status, result = NULLIF(v.result, 'null'), "
            "error_type = v.error_type, error_message = v.error_message, "
            "error_traceback = v.error_traceback, finished_at = v.finished_at, "
            "run_after = COALESCE(v.run_after, t.run_after), lease_expires_at = NULL "
            "FROM jsonb_to_recordset(%s::jsonb) AS v(id uuid, attempt integer, status text, "
            "result jsonb, error_type text, error_message text, error_traceback text, "
            "finished_at timestamptz, run_after timestamptz) "
            "WHERE t.id = v.id AND t.attempt = v.attempt AND t.status = 'running' "
            "AND t.worker_id = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [_batch_json(items), worker_id])
        return
    sql = (
        f"UPDATE {TABLE} SET status = %s, result = %s, error_type = %s, error_message = %s, "
        "error_traceback = %s, finished_at = %s, run_after = COALESCE(%s, run_after), "
        "lease_expires_at = NULL "
        "WHERE id = %s AND attempt = %s AND status = 'running' AND worker_id = %s"
    )
    rows = []
    for item in items:
        run_id, attempt, *rest = _values(connection, item)
        rows.append([*rest, run_id, attempt, worker_id])
    with write_transaction(connection) as cursor:
        cursor.executemany(sql, rows)


def _batch_json(items: Sequence[Finished]) -> str:
    records = []
    for item in items:
        outcome = item.outcome
        error = outcome.error
        succeeded = outcome.status is TaskStatus.SUCCEEDED
        records.append(
            {
                "id": item.run.id,
                "attempt": item.run.attempt,
                "status": outcome.status.value,
                "result": outcome.result if succeeded else None,
                "error_type": error.type if error else "",
                "error_message": error.message if error else "",
                "error_traceback": error.traceback if error else "",
                "finished_at": None if outcome.status is TaskStatus.SCHEDULED else item.at,
                "run_after": outcome.retry_at,
            }
        )
    return to_json(records, fallback=repr).decode()


def release(connection: Any, worker_id: str, runs: Sequence[ClaimedRun]) -> int:
    """Give back claimed runs that never started (the attempt does not count)."""
    if not runs:
        return 0
    marks = ", ".join(["%s"] * len(runs))
    sql = (
        f"UPDATE {TABLE} SET status = 'ready', attempt = attempt - 1, worker_id = NULL, "
        f"started_at = NULL, lease_expires_at = NULL WHERE id IN ({marks}) "
        "AND status = 'running' AND worker_id = %s"
    )
    with write_transaction(connection) as cursor:
        cursor.execute(sql, [*(run.db_id for run in runs), worker_id])
        return int(cursor.rowcount)


def extend_leases(connection: Any, worker_id: str, lease: float, now: datetime) -> int:
    """Heartbeat: push back the lease of every run this worker holds."""
    sql = f"UPDATE {TABLE} SET lease_expires_at = %s WHERE status = 'running' AND worker_id = %s"
    with write_transaction(connection) as cursor:
        cursor.execute(sql, [_dt(connection, now + timedelta(seconds=lease)), worker_id])
        return int(cursor.rowcount)


def reclaim_expired(connection: Any, lost_limit: int, now: datetime) -> tuple[int, int]:
    """Runs whose worker stopped heartbeating go back to ``ready`` as a new attempt.

    A run that has lost its worker so often that it reached ``max_attempts + lost_limit``
    attempts is failed instead: it probably kills the worker. Returns (requeued, failed).
    """
    stamp = _dt(connection, now)
    expired = "status = 'running' AND lease_expires_at < %s"
    pick = f"SELECT id FROM {TABLE} WHERE {expired}"
    lock = " FOR UPDATE SKIP LOCKED" if _pg(connection) else ""
    message = (
        "The worker running this run stopped (killed, crashed or lost) too many times; "
        "the run was given up."
    )
    with write_transaction(connection) as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET status = 'failed', finished_at = %s, lease_expires_at = NULL, "
            "error_type = %s, error_message = %s, error_traceback = '' "
            f"WHERE id IN ({pick} AND attempt >= max_attempts + %s{lock})",
            [stamp, LOST_ERROR_TYPE, message, stamp, lost_limit],
        )
        failed = int(cursor.rowcount)
        cursor.execute(
            f"UPDATE {TABLE} SET status = 'ready', run_after = %s, worker_id = NULL, "
            f"lease_expires_at = NULL WHERE id IN ({pick}{lock})",
            [stamp, stamp],
        )
        requeued = int(cursor.rowcount)
    return requeued, failed
