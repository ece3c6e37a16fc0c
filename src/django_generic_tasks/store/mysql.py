"""The run queue on MariaDB (10.6+) and MySQL (8+): claims lock then lease in one transaction,
keyed inserts go one by one on MySQL, a batch of outcomes is one ``UPDATE ... JOIN`` (the
statements: ``sql/mysql.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .queue import RunQueue, claimed
from .rollups import Rollup
from .rows import (
    ClaimedRun,
    Finished,
    extra_attempts,
    new_row,
    outcome_values,
    retry_entry,
)
from .sql import ids
from .sql import mysql as sql

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from ..models import TaskRun


class MySQLRunQueue(RunQueue):
    """``RunQueue`` on MariaDB (10.6+) or MySQL (8+)."""

    def insert(self, requests: Sequence[EnqueueRequest], now: datetime) -> list[TaskRun | None]:
        """As ``RunQueue.insert``; on MySQL (no ``INSERT ... RETURNING``), keyed requests go
        one by one."""
        if self.connection.mysql_is_mariadb or all(r.key is None for r in requests):
            return super().insert(requests, now)
        return [self._insert_keyed(request, now) for request in requests]

    def _insert_keyed(self, request: EnqueueRequest, now: datetime) -> TaskRun | None:
        from django.db import IntegrityError, transaction

        assert request.key is not None
        for _ in range(3):
            statement, params = self._insert_statement(
                [new_row(self.connection, request, now)], False
            )
            try:
                with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                    cursor.execute(statement, params)
                return None
            except IntegrityError:
                run = self.open_run(request.task_name, request.key)
                if run is not None:
                    return run
        raise RuntimeError(f"Could not start or find the run with key {request.key!r}.")

    def open_run(self, task_name: str, key: str) -> TaskRun | None:
        """Compares keys byte for byte, trailing spaces included, as the unique index does."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql.OPEN_RUN, [task_name, key])
            row = cursor.fetchone()
        return None if row is None else self.runs.filter(pk=row[0]).first()

    def _claim_cursor(self) -> Any:
        return self.write_transaction()

    def _claim_rows(
        self,
        cursor: Any,
        worker_id: str,
        where: str,
        params: Sequence[Any],
        limit: int,
        lease: float,
        now: datetime,
    ) -> list[ClaimedRun]:
        """Lock due runs (skipping runs other claims hold), then lease them (one
        transaction: ``cursor``'s)."""
        cursor.execute(sql.CLAIM.format(queues=where), [self.dt(now), *params, limit])
        found = cursor.fetchall()
        if not found:
            return []
        cursor.execute(
            sql.CLAIM_MARK.format(ids=ids(len(found))),
            [
                worker_id,
                self.dt(now),
                self.dt(now + timedelta(seconds=lease)),
                *(r[0] for r in found),
            ],
        )
        return claimed(found, 1)

    def _finish(self, worker_id: str, items: Sequence[Finished], added: Sequence[Rollup]) -> None:
        """One ``UPDATE ... JOIN`` of the batch, given as a derived table."""
        params: list[Any] = []
        for item in items:
            params += [item.run.db_id, item.run.attempt, *outcome_values(self.dt, item)]
            params += [retry_entry(item, worker_id), self.dt(item.at), extra_attempts(item)]
        statement = sql.FINISH.format(rows=" UNION ALL ".join([sql.FINISH_ROW] * len(items)))
        with self.write_transaction() as cursor:
            cursor.execute(statement, [*params, worker_id])
            self.observations.add_rollups(cursor, added)
            self.runs_ended(cursor, [item.run.db_id for item in items])
