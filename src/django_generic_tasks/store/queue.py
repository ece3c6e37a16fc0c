"""``RunQueue``: the runs' way through the queue: insert, claim, finish, give back, reclaim.

The statements are each dialect's (``sql/``); the procedures here bind them, and
``postgresql.py`` / ``mysql.py`` replace the few whose shape differs there (``COPY``, the
JSON batch; the two-step claim, the joined batch). The store decides nothing about retries:
it writes the decisions it is given (``rows.outcome_row``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from . import statuses as st
from .base import StorePart
from .flow import FlowControl
from .rollups import Rollup, rollups
from .rows import (
    LOST_ERROR_TYPE,
    LOST_MESSAGE,
    ClaimedRun,
    Finished,
    Reclaimed,
    extra_attempts,
    new_row,
    outcome_values,
    retry_entry,
)
from .schema import id_str, parse_run_id, table
from .sql import ids, rows
from .statuses import waiting_status
from .transient import retry_transient

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from ..execution.attempts import Decision
    from ..models import TaskRun
    from .observe import Observations
    from .workflows import WorkflowBook

    LostDecider = Callable[[str, int, int], Decision]
    """``(task_name, attempt, max_attempts) -> Decision`` for a run whose worker was lost."""

CHUNK = 1000
"""Rows per INSERT: SQLite allows 32,766 bound variables per statement, MySQL 65,535."""
_INSERTS: dict[tuple[str, int, bool], str] = {}


class RunQueue(StorePart):
    """The run queue on one connection: what ``DatabaseBackend`` and the worker do to runs."""

    def __init__(self, connection: Any, observations: Observations) -> None:
        super().__init__(connection)
        self.observations = observations
        """Where a batch's rollups go (in the batch's transaction)."""
        self.flow = FlowControl(connection)
        """Flow control: the runs' limits, pauses, the claim through the limits."""

    # -- starting runs ----------------------------------------------------------------------

    def insert_runs(
        self, requests: Sequence[EnqueueRequest], now: datetime
    ) -> list[TaskRun | None]:
        """``insert()``, and the limits of the runs that have some (``flow``), in one
        transaction (a claim never sees such a run without its limits)."""
        if all(request.flow is None for request in requests):
            return self.insert(requests, now)
        from django.db import transaction

        with transaction.atomic(using=self.alias):
            found = self.insert(requests, now)
            limited = [
                request
                for request, run in zip(requests, found, strict=True)
                if run is None and request.flow is not None
            ]
            if limited:
                with self.connection.cursor() as cursor:
                    self.flow.set_limits(cursor, limited)
        return found

    def insert(self, requests: Sequence[EnqueueRequest], now: datetime) -> list[TaskRun | None]:
        """Insert one run per request, in order. Per request: ``None`` when its row was
        written (status per ``statuses.waiting_status``), or the unfinished run of the same
        task that already holds its ``key``."""
        new_rows = [new_row(self.connection, request, now) for request in requests]
        keyed = any(request.key is not None for request in requests)
        if not keyed and self._bulk_insert(new_rows):
            return [None] * len(new_rows)
        found: list[TaskRun | None] = []
        with self.connection.cursor() as cursor:
            for start in range(0, len(new_rows), CHUNK):
                chunk = new_rows[start : start + CHUNK]
                cursor.execute(*self._insert_statement(chunk, keyed))
                if not keyed:
                    found.extend([None] * len(chunk))
                    continue
                inserted = {id_str(r[0]) for r in cursor.fetchall()}
                for request in requests[start : start + CHUNK]:
                    found.append(None if request.run_id in inserted else self._holder(request))
        return found

    def _bulk_insert(self, new_rows: list[tuple[Any, ...]]) -> bool:
        """Insert ``new_rows`` by the dialect's fastest path; ``False`` when it has none."""
        return False

    def _insert_statement(
        self, new_rows: list[tuple[Any, ...]], keyed: bool
    ) -> tuple[str, list[Any]]:
        """``insert`` (``keyed``: ``insert_keyed``) of ``new_rows`` and its parameters."""
        return self._insert_text(len(new_rows), keyed), [v for row in new_rows for v in row]

    def _insert_text(self, count: int, keyed: bool) -> str:
        """The insert of ``count`` rows, formatted once per dialect, size and ``keyed``."""
        cache_key = (self.connection.vendor, count, keyed)
        sql = _INSERTS.get(cache_key)
        if sql is None:
            if len(_INSERTS) > 256:
                _INSERTS.clear()
            text = self.sql.insert_keyed if keyed else self.sql.insert
            sql = _INSERTS[cache_key] = text.format(rows=rows(self.sql.new_row, count))
        return sql

    def _holder(self, request: EnqueueRequest) -> TaskRun | None:
        """The unfinished run holding ``request.key``; insert after all if it just finished."""
        assert request.key is not None
        for _ in range(3):
            run = self.open_run(request.task_name, request.key)
            if run is not None:
                return run
            sql, params = self._insert_statement([new_row(self.connection, request, _now())], True)
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.fetchall():
                    return None
        raise RuntimeError(f"Could not start or find the run with key {request.key!r}.")

    def open_run(self, task_name: str, key: str) -> TaskRun | None:
        """The unfinished run of ``task_name`` that holds ``key``, if any."""
        return (
            self.runs.filter(task_name=task_name, key=key, status__in=st.values(st.UNFINISHED))
            .order_by("pk")
            .first()
        )

    def get(self, run_id: str) -> TaskRun | None:
        """The run ``run_id``; ``None`` when there is none or the id is malformed."""
        pk = parse_run_id(run_id)
        return None if pk is None else self.runs.filter(pk=pk).first()

    def mark_awaited(self, run_id: str) -> None:
        """Ask for a finish notice of ``run_id`` (``store.finish_notices``): only PostgreSQL
        sends them; elsewhere ``wait()`` polls."""
        if self.sql.mark_awaited is not None:
            from .listen import WORKERS_CHANNEL

            with self.connection.cursor() as cursor:
                cursor.execute(self.sql.mark_awaited, [run_id, WORKERS_CHANNEL])

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
        limited: bool = False,
        *,
        rated: bool = True,
        admit_most: int | None = None,
    ) -> list[ClaimedRun]:
        """Take up to ``limit`` due runs (priority, then ``run_after`` order) of ``queues``
        (empty: all) but not of ``exclude`` nor of a paused queue or task, and lease them.
        ``limited``: through the concurrency and rate limits (``flow.FlowControl``; the
        worker asks for it when tasks with limits are registered), under the flow lock;
        ``rated``: rate-limited runs may be waiting (else the rate limit step is skipped);
        ``admit_most``: at most this many runs with a concurrency key (default ``limit``: a
        worker takes no more slots than it has hands free to run them at once).

        No two claims, from any number of workers, ever return the same run attempt.
        """
        if limit <= 0:
            return []
        where, params = self.claim_filter(queues, exclude)
        if not limited:
            with self._claim_cursor() as cursor:
                return self._claim_rows(cursor, worker_id, where, params, limit, lease, now)
        most = limit if admit_most is None else max(0, min(limit, admit_most))
        return self._claim_limited(worker_id, where, params, limit, lease, now, rated, most)

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
        """``claim()`` through the limits: under the flow lock, the admission
        (``FlowControl.admit``, at most ``admit_most`` runs with a concurrency key), then the
        claim of the runs it admits and of runs without limits. PostgreSQL's own locks per
        key instead (``PostgreSQLRunQueue``)."""
        with self.flow.locked() as cursor:
            admit, admitted = self.flow.admit(cursor, now, where, params, admit_most, rated=rated)
            return self._claim_rows(
                cursor, worker_id, where + admit, [*params, *admitted], limit, lease, now
            )

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
        """Write ``item``'s outcome (a run that held a concurrency slot) and claim one run
        through the limits for the hand that ran it (``queues``/``exclude``: the worker's).
        Here two steps; PostgreSQL hands the slot over in one statement."""
        self.finish(worker_id, [item], [])
        found = self.claim(
            worker_id, queues, 1, lease, _now(), exclude, True, rated=rated, admit_most=1
        )
        return found[0] if found else None

    def claim_filter(self, queues: Sequence[str], exclude: Sequence[str]) -> tuple[str, list[Any]]:
        """A claim's ``{queues}`` conditions and their parameters: ``queues``, not
        ``exclude``, and nothing paused."""
        paused_queues, paused_tasks = self.flow.paused_sets()
        skipped = [*exclude, *sorted(paused_queues - set(exclude))]
        where = queue_filter(queues, skipped)
        if paused_tasks:
            where += f" AND task_name NOT IN ({ids(len(paused_tasks))})"
        return where, [*queues, *skipped, *sorted(paused_tasks)]

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
        """The claim statement with the conditions ``where`` (parameters ``params``)."""
        cursor.execute(
            self.sql.claim.format(queues=where),
            [
                worker_id,
                self.dt(now),
                self.dt(now + timedelta(seconds=lease)),
                self.dt(now),
                *params,
                limit,
            ],
        )
        return claimed(cursor.fetchall(), 0)

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
        transaction.

        A retry of a run whose cancel was requested meanwhile ends it ``cancelled`` instead
        (a run with a pending cancel is never claimed again); an attempt that is retried
        joins the run's ``history``."""
        added = rollups(items) if rollup_rows is None else rollup_rows
        if items and not self.history_ready():
            params = [
                [*outcome_values(self.dt, item), item.run.db_id, item.run.attempt, worker_id]
                for item in items
            ]
            with self.write_transaction() as cursor:
                cursor.executemany(self.sql.finish_plain, params)
                self.observations.add_rollups(cursor, added)
        elif items:
            self._finish(worker_id, items, added)
        elif added:
            self.observations.write_rollups(added)

    def _finish(self, worker_id: str, items: Sequence[Finished], added: Sequence[Rollup]) -> None:
        """``finish()`` of a non-empty batch: one ``finish`` per run, in one transaction."""
        params = []
        for item in items:
            status, result, kind, message, trace, finished, run_after = outcome_values(
                self.dt, item
            )
            entry = retry_entry(item, worker_id)
            params.append(
                [
                    *(finished, status, result, kind, message, trace, finished),
                    *(self.dt(item.at), run_after, extra_attempts(item), entry, entry),
                    *(item.run.db_id, item.run.attempt, worker_id),
                ]
            )
        with self.write_transaction() as cursor:
            cursor.executemany(self.sql.finish, params)
            self.observations.add_rollups(cursor, added)
            self.runs_ended(cursor, [item.run.db_id for item in items])

    @cached_property
    def workflows(self) -> WorkflowBook:
        """The workflows whose runs this queue ends (``store.workflows``)."""
        from .workflows import WorkflowBook

        return WorkflowBook(self.connection)

    def runs_ended(self, cursor: Any, db_ids: Sequence[Any]) -> None:
        """Runs among ``db_ids`` just ended in the transaction of ``cursor``: advance their
        workflows in it (``WorkflowBook.runs_ended``)."""
        self.workflows.runs_ended(cursor, db_ids, self)

    def history_ready(self) -> bool:
        """Whether ``TaskRun.history`` exists (migration 0010 applied). Until it does, outcomes
        are written as before it (no history, no cancel check)."""

        def probe() -> bool:
            with self.connection.cursor() as cursor:
                columns = self.connection.introspection.get_table_description(cursor, table().name)
            return any(column.name == "history" for column in columns)

        return self.ready("history", probe, "TaskRun has no history column yet (run migrate)")

    @retry_transient
    def postpone(self, worker_id: str, run: ClaimedRun, run_after: datetime) -> int:
        """Give back a claimed run this worker did not run to its end (``CapacityExceededError``,
        a lost database connection): the attempt does not count, and the run waits until
        ``run_after`` (or ends ``cancelled`` at once when its cancel was requested)."""
        params = [self.dt(run_after), self.dt(_now()), run.db_id, worker_id]
        with self.write_transaction() as cursor:
            cursor.execute(self.sql.postpone, params)
            count = int(cursor.rowcount)
            self.runs_ended(cursor, [run.db_id])  # ended cancelled: its workflow goes on
            return count

    @retry_transient
    def release(self, worker_id: str, runs: Sequence[ClaimedRun]) -> int:
        """Give back claimed runs that never started (the attempt does not count; a run
        whose cancel was requested ends ``cancelled``)."""
        if not runs:
            return 0
        sql = self.sql.release.format(ids=ids(len(runs)))
        with self.write_transaction() as cursor:
            cursor.execute(sql, [self.dt(_now()), *(run.db_id for run in runs), worker_id])
            count = int(cursor.rowcount)
            self.runs_ended(cursor, [run.db_id for run in runs])  # those ended cancelled
            return count

    @retry_transient
    def extend_leases(self, worker_id: str, lease: float, now: datetime) -> int:
        """Heartbeat: push back the lease of every run ``worker_id`` holds."""
        with self.write_transaction() as cursor:
            cursor.execute(
                self.sql.extend_leases, [self.dt(now + timedelta(seconds=lease)), worker_id]
            )
            return int(cursor.rowcount)

    def cancel_requested(self, worker_id: str) -> list[str]:
        """The runs ``worker_id`` is running whose cancel was requested (the heartbeat's read,
        through the index on running runs)."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql.cancel_requested, [worker_id])
            return [id_str(row[0]) for row in cursor.fetchall()]

    @retry_transient
    def reclaim_expired(self, decide: LostDecider, now: datetime) -> list[Reclaimed]:
        """Take back the runs whose worker stopped heartbeating (their lease expired) and
        write what became of each, in one transaction (the lost attempt joins the run's
        ``history``).

        ``decide(task_name, attempt, max_attempts)`` is the retry policy's decision for each
        (``attempts.lost_worker_decision``): a retry puts the run back to waiting as a new
        attempt, due at the decision's ``retry_at``; ``FINAL`` fails it (``WorkerLost``). A
        run whose cancel was requested ends ``cancelled`` instead. The store decides nothing.
        """
        stamp = self.dt(now)
        with self.write_transaction() as cursor:
            cursor.execute(self.sql.reclaim_select, [stamp])
            found: list[Reclaimed] = []
            requeue: list[list[Any]] = []
            for r in cursor.fetchall():
                became, at = "cancelled", now
                if r[7] is None:
                    decision = decide(r[1], int(r[2]), int(r[3]))
                    became = "requeued" if decision.retry else "failed"
                    at = decision.retry_at or now
                run = Reclaimed(
                    id_str(r[0]),
                    r[0],
                    r[1],
                    int(r[2]),
                    became,
                    _seconds_since(r[6], now),
                    r[4],
                    _aware(r[5]),
                )
                found.append(run)
                if became == "requeued":
                    status = waiting_status(at, now).value
                    requeue.append([status, self.dt(at), run.entry(now), run.db_id])
            if requeue:
                cursor.executemany(self.sql.reclaim_requeue, requeue)
            for became, statement, values in (
                ("cancelled", self.sql.reclaim_cancelled, []),
                ("failed", self.sql.reclaim_failed, [LOST_ERROR_TYPE, LOST_MESSAGE]),
            ):
                lost = [run.db_id for run in found if run.became == became]
                if lost:
                    cursor.execute(statement.format(ids=ids(len(lost))), [stamp, *values, *lost])
            self.runs_ended(cursor, [run.db_id for run in found if run.became != "requeued"])
        return found


def claimed(found: Sequence[Sequence[Any]], attempt_offset: int) -> list[ClaimedRun]:
    """The claimed runs of a claim's rows (id, task name, params, attempt, max attempts,
    priority, queue, trace context, run_after), highest priority first; ``attempt_offset``:
    what the row's attempt lacks (1 when it was read before the claim counted it)."""
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
        for r in found
    ]
    runs.sort(key=lambda run: -run.priority)
    return runs


def queue_filter(queues: Sequence[str], exclude: Sequence[str]) -> str:
    """A claim's ``{queues}``: ``AND queue [NOT] IN (...)`` conditions; parameters:
    ``queues``, then ``exclude``."""
    sql = f" AND queue IN ({ids(len(queues))})" if queues else ""
    if exclude:
        sql += f" AND queue NOT IN ({ids(len(exclude))})"
    return sql


def _aware(value: Any) -> datetime | None:
    """A datetime as a driver returns it (aware, naive UTC, or SQLite's text) made aware."""
    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds_since(value: Any, now: datetime) -> float:
    moment = _aware(value)
    return 0.0 if moment is None else max(0.0, (now - moment).total_seconds())


def _now() -> datetime:
    return datetime.now(UTC)
