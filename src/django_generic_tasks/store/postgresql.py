"""The run queue on PostgreSQL: ``COPY`` and one-array-per-column inserts, claims in one
autocommitted statement, a batch of outcomes and its rollups as one statement with a JSON
document each (the statements: ``sql/postgresql.py``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from pydantic_core import to_json

from .queue import RunQueue, claimed
from .rollups import COLUMNS, Rollup
from .rows import OUTCOME_COLUMNS, ClaimedRun, Finished, outcome_values, retry_record
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

    @property
    def _prepare(self) -> bool:
        """Whether the claim through the limits and the slot hand-off are server-side prepared
        statements (planned once per connection): only when the project opted in to
        server-side binding (``OPTIONS["server_side_binding"]``), which a pooler in
        transaction mode (PgBouncer before 1.21) cannot carry; else each is planned anew."""
        return bool(self.connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"))

    def _claim_limited(
        self,
        worker_id: str,
        where: str,
        params: Sequence[Any],
        limit: int,
        lease: float,
        now: datetime,
        rated: bool,
        admit_most: int,
    ) -> list[ClaimedRun]:
        """Through the limits without a global lock, in two round trips: ``BEGIN`` and the
        concurrency keys with a free slot locked (``FLOW_LOCK_KEYS``), then one statement
        that admits and claims (``CLAIM_LIMITED``) and ``COMMIT`` (pipelined, prepared).
        Claims of other keys, and of runs without limits, go on meanwhile. When due
        rate-limited runs wait for a turn, they get one (``FlowControl.rate_turns`` under a
        lock per rate key) and the claim is made again for what is left. Inside the caller's
        transaction, the generic path (one claim through the limits at a time)."""
        if self.connection.in_atomic_block:
            return super()._claim_limited(
                worker_id, where, params, limit, lease, now, rated, admit_most
            )
        found, turns_due = self._claim_pipelined(
            worker_id, where, params, limit, lease, now, rated, admit_most
        )
        if turns_due:
            with self.write_transaction() as cursor:
                self.flow.rate_turns(cursor, now, where, params, lock_keys=sql.RATE_LOCK_KEYS)
            if len(found) < limit:
                more, _ = self._claim_pipelined(
                    worker_id,
                    where,
                    params,
                    limit - len(found),
                    lease,
                    now,
                    rated,
                    max(0, admit_most - len(found)),
                )
                found = sorted([*found, *more], key=lambda run: -run.priority)
        return found

    def _claim_pipelined(
        self,
        worker_id: str,
        where: str,
        params: Sequence[Any],
        limit: int,
        lease: float,
        now: datetime,
        rated: bool,
        admit_most: int,
    ) -> tuple[list[ClaimedRun], bool]:
        """One claim through the limits' keys (see ``_claim_limited``): the claimed runs, and
        whether due rate-limited runs wait for a turn."""
        import psycopg

        rated_sql = sql.RATED if rated else ""
        lock_keys = sql.FLOW_LOCK_KEYS.format(queues=where, rated=rated_sql)
        claim = sql.CLAIM_LIMITED.format(queues=where, rated=rated_sql)
        self.connection.ensure_connection()
        raw = self.connection.connection
        with self.connection.wrap_database_errors:
            try:
                with raw.pipeline():
                    psycopg.Cursor(raw).execute("BEGIN")
                    locking = psycopg.Cursor(raw)
                    locking.execute(
                        lock_keys,
                        [admit_most, now, *params, rated, now, *params],
                        prepare=self._prepare,
                    )
                    keys = [row[0] for row in locking.fetchall()]
                    turns_due = bool(keys) and keys[-1] is None
                    if turns_due:
                        keys.pop()
                    claiming = psycopg.Cursor(raw)
                    claiming.execute(
                        claim,
                        [
                            *(now, *params, limit),
                            *(keys, now, *params, admit_most, admit_most, limit),
                            *(worker_id, now, now + timedelta(seconds=lease)),
                        ],
                        prepare=self._prepare,
                    )
                    psycopg.Cursor(raw).execute("COMMIT")
                    found = claimed(claiming.fetchall(), 0)
            except BaseException:
                if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):
                        raw.execute("ROLLBACK")
                raise
        return found, turns_due

    def finish_and_claim_next(
        self,
        worker_id: str,
        item: Finished,
        queues: Sequence[str],
        exclude: Sequence[str],
        lease: float,
        *,
        rated: bool,
    ) -> ClaimedRun | None:
        """``item``'s outcome written and its concurrency slot handed to the next due run of
        its key in one autocommitted statement (``FINISH_AND_CLAIM_NEXT``, prepared): no
        lock, one round trip. A workflow member is written by ``finish()`` instead."""
        import psycopg

        if self.connection.in_atomic_block or not self.workflows.exists():
            return super().finish_and_claim_next(
                worker_id, item, queues, exclude, lease, rated=rated
            )
        where, params = self.claim_filter(queues, exclude)
        statement = sql.FINISH_AND_CLAIM_NEXT.format(queues=where, rated=sql.RATED if rated else "")
        now = datetime.now(UTC)
        self.connection.ensure_connection()
        with self.connection.wrap_database_errors:
            cursor = psycopg.Cursor(self.connection.connection)
            cursor.execute(
                statement,
                [
                    *(to_json(self._records([item], worker_id), fallback=repr).decode(), worker_id),
                    *(now, *params, worker_id, now, now + timedelta(seconds=lease)),
                ],
                prepare=self._prepare,
            )
            row = cursor.fetchone()
        assert row is not None
        if row[0]:  # a workflow member: written with what its workflow starts next
            self.finish(worker_id, [item], [])
            return None
        return None if row[1] is None else claimed([row[1:]], 0)[0]

    @staticmethod
    def _records(items: Sequence[Finished], worker_id: str) -> list[dict[str, Any]]:
        """The outcomes as the finish statements' JSON records."""
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
        return records

    def _finish(self, worker_id: str, items: Sequence[Finished], added: Sequence[Rollup]) -> None:
        """The whole batch travels as one JSON document: one parameter to bind, however many
        runs, so completions cost one round trip and almost no client-side work. Rollups
        (a second, small document) are added by the same statement."""
        records = self._records(items, worker_id)
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
