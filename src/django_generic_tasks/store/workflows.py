"""``WorkflowBook``: the workflows' rows (``TaskWorkflow``, ``WorkflowMember``) beside the runs.

A workflow's next run is started in the transaction that writes the outcome causing it
(``runs_ended()``, called by ``RunQueue`` inside ``finish()`` and ``reclaim_expired()``): a
member's end is counted when its member row flips to ``done`` (once, whichever transaction
changes the row), the count lives in the workflow's row (locked by the count's ``UPDATE``
until commit, so two members ending at once on two workers are counted one after the other),
and the callback's run is inserted in the same transaction. A crash before the commit loses
the outcome and the next run together; nothing is started twice. What the next run is
(``workflows.rules``) is decided above the store; the store writes it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .rows import new_row
from .schema import db_id, id_str
from .sql import common, ids, rows
from .workflow_reads import WorkflowReads, json_value

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from ..workflows.rules import Ended, Plan, Step
    from .queue import RunQueue

__all__ = ["WorkflowBook"]

FINISHED = ("succeeded", "failed", "discarded", "cancelled")


class WorkflowBook(WorkflowReads):
    """Workflows on one connection: create them, advance them as their runs end, read them."""

    def create(self, plan: Plan, queue: RunQueue, now: datetime) -> None:
        """Write ``plan``'s workflow row, its first runs and their member rows (call inside
        a transaction: the caller's)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                common.WORKFLOW_INSERT,
                [
                    db_id(self.connection, plan.id),
                    plan.kind,
                    json.dumps(plan.spec),
                    plan.total,
                    self.dt(now),
                ],
            )
        with self.connection.cursor() as cursor:
            _insert_limited(cursor, queue, plan.first, now)
            self._add_members(cursor, plan.id, [(r, n, "member") for n, r in enumerate(plan.first)])

    def _add_members(
        self, cursor: Any, workflow_id: str, members: Sequence[tuple[EnqueueRequest, int, str]]
    ) -> None:
        wid = db_id(self.connection, workflow_id)
        for start in range(0, len(members), 1000):
            chunk = members[start : start + 1000]
            values: list[Any] = []
            for request, position, role in chunk:
                values += [db_id(self.connection, request.run_id), wid, position, role]
            sql = common.WORKFLOW_MEMBERS_INSERT.format(
                rows=rows(common.WORKFLOW_MEMBER_ROW, len(chunk))
            )
            cursor.execute(sql, values)

    def runs_ended(self, cursor: Any, db_ids: Sequence[Any], queue: RunQueue) -> None:
        """Advance the workflows of the runs ``db_ids`` that just ended (in the transaction
        that ended them, through ``cursor``): count each member once, start what follows,
        end the workflow when it is over. Statements per call: one read of which runs are
        members (none: that is all), then one member update, one read of the runs, and per
        workflow one count and one read, whatever the number of members."""
        if not db_ids or not self.exists():
            return
        found: list[Any] = []
        for start in range(0, len(db_ids), 1000):
            chunk = list(db_ids[start : start + 1000])
            cursor.execute(self._members_ended.format(ids=ids(len(chunk))), chunk)
            found += cursor.fetchall()
        if not found:
            return
        for start in range(0, len(found), 1000):
            chunk = [row[0] for row in found[start : start + 1000]]
            cursor.execute(common.WORKFLOW_MEMBERS_DONE.format(ids=ids(len(chunk))), chunk)
        self.members_counted(cursor, found, queue)

    def members_counted(
        self,
        cursor: Any,
        found: Sequence[Any],
        queue: RunQueue,
        counted: dict[str, Sequence[Any]] | None = None,
    ) -> None:
        """Advance the workflows of the members ``found`` (rows of ``WORKFLOW_MEMBERS_ENDED``,
        already flipped to done in this transaction): count them, start what follows.
        ``counted``: the workflows' rows (kind, status, spec, total, done, failed) when the
        statement that flipped the members also counted them, and ``found`` rows then carry
        each run's result (PostgreSQL's finish: no count and no read here)."""
        if not found:
            return
        ended = {id_str(row[0]): _ended_row(row) for row in found}
        by_workflow: dict[str, list[Any]] = {}
        for row in found:
            by_workflow.setdefault(id_str(row[1]), []).append(row)
        now = datetime.now(UTC)
        for workflow_id in sorted(by_workflow):  # one lock order for every transaction
            members = sorted(by_workflow[workflow_id], key=lambda row: int(row[2]))
            state = None if counted is None else counted[workflow_id]
            self._advance(cursor, workflow_id, members, ended, queue, now, state)

    @property
    def _count_returning(self) -> str | None:
        """The count that also reads the workflow (``None`` on MariaDB/MySQL: no
        ``UPDATE ... RETURNING``)."""
        from .sql import postgresql, sqlite

        vendor = self.connection.vendor
        module = postgresql if vendor == "postgresql" else sqlite if vendor == "sqlite" else None
        return None if module is None else str(module.WORKFLOW_COUNT_RETURNING)

    @property
    def _members_ended(self) -> str:
        from .sql import mysql, postgresql, sqlite

        vendor = self.connection.vendor
        module = postgresql if vendor == "postgresql" else mysql if vendor == "mysql" else sqlite
        return str(module.WORKFLOW_MEMBERS_ENDED)

    def _advance(
        self,
        cursor: Any,
        workflow_id: str,
        rows: list[Any],
        ended: dict[str, Ended],
        queue: RunQueue,
        now: datetime,
        state: Sequence[Any] | None = None,
    ) -> None:
        """Count ``rows`` (members of ``workflow_id`` that ended) and do what follows
        (``state``: already counted, the workflow's row as the count left it)."""
        from ..workflows.rules import after_callback, after_member

        wid = rows[0][1]
        members = [row for row in rows if row[3] == "member"]
        if state is None:
            counted = self._count_returning
            if members:
                failed = sum(ended[id_str(row[0])].status != "succeeded" for row in members)
                cursor.execute(counted or common.WORKFLOW_COUNT, [len(members), failed, wid])
            if not members or counted is None:
                cursor.execute(common.WORKFLOW_READ, [wid])
            state = cursor.fetchone()
        kind, status, spec_text, total, done, failed_count = state
        spec = json.loads(spec_text)
        for run_pk, _, position, role, *_ in rows:
            if status != "running":
                return
            run = ended[id_str(run_pk)]
            if kind == "chain" and run.status == "succeeded" and len(rows[0]) <= 8:
                # its result makes the next params (not in the row: read it)
                run = self._ended({id_str(run_pk)})[id_str(run_pk)]
            if role == "callback":
                step = after_callback(run.status, run.error)
            elif kind != "chain" and run_pk != members[-1][0]:
                continue  # a group or batch is decided once, at its last counted member
            else:
                step = after_member(
                    kind,
                    spec,
                    int(position),
                    run.status,
                    run.error,
                    result=run.result,
                    last=total is not None and int(done) >= int(total),
                    members=lambda: self.members(workflow_id),
                    failed=int(failed_count),
                )
            self._apply(cursor, workflow_id, kind, int(position), int(total or 0), step, queue, now)
            status = step.status

    def join(
        self, workflow_id: str, requests: Sequence[EnqueueRequest], first: int, queue: RunQueue
    ) -> list[Any]:
        """Start ``requests`` as members of batch ``workflow_id`` at positions ``first``...
        (call inside a transaction). Per request what ``RunQueue.insert`` says: ``None``
        when inserted (a member), else the unfinished run holding its key (not a member)."""
        with self.connection.cursor() as cursor:
            found = _insert_limited(cursor, queue, requests, datetime.now(UTC))
            joined = [
                (request, first + n, "member")
                for n, (request, run) in enumerate(zip(requests, found, strict=True))
                if run is None
            ]
            self._add_members(cursor, workflow_id, joined)
        return found

    def close(self, workflow_id: str, count: int, queue: RunQueue) -> None:
        """Batch ``workflow_id``'s block ended after ``count`` starts: end it now if its runs
        all ended already (call inside a transaction)."""
        from ..workflows.rules import batch_end

        wid = db_id(self.connection, workflow_id)
        with self.connection.cursor() as cursor:
            cursor.execute(common.WORKFLOW_CLOSE, [count, wid])
            cursor.execute(common.WORKFLOW_READ, [wid])
            kind, status, spec_text, total, done, failed = cursor.fetchone()
            if status == "running" and total is not None and int(done) >= int(total):
                step = batch_end(json.loads(spec_text), int(failed))
                self._apply(cursor, workflow_id, kind, 0, int(total), step, queue, _now())

    def _apply(
        self,
        cursor: Any,
        workflow_id: str,
        kind: str,
        position: int,
        total: int,
        step: Step,
        queue: RunQueue,
        now: datetime,
    ) -> None:
        wid = db_id(self.connection, workflow_id)
        if step.start is not None:
            if kind == "chain":
                self._start(cursor, workflow_id, step.start, position + 1, "member", queue, now)
            else:
                cursor.execute(
                    common.WORKFLOW_CALLBACK, [db_id(self.connection, step.start.run_id), wid]
                )
                if cursor.rowcount == 1:  # started once, whoever counted the last member
                    self._start(cursor, workflow_id, step.start, total, "callback", queue, now)
        if step.callbacks:
            _insert_limited(cursor, queue, step.callbacks, now)
        if step.status != "running":
            error = step.error
            cursor.execute(
                common.WORKFLOW_END,
                [
                    step.status,
                    self.dt(now),
                    step.failed_position,
                    error.type[:255] if error else "",
                    error.message if error else "",
                    wid,
                ],
            )

    def _start(
        self,
        cursor: Any,
        workflow_id: str,
        request: EnqueueRequest,
        position: int,
        role: str,
        queue: RunQueue,
        now: datetime,
    ) -> None:
        """Insert ``request``'s run and its member row (on PostgreSQL in one statement)."""
        if self.connection.vendor == "postgresql" and request.key is None and request.flow is None:
            from .sql import postgresql

            wid = db_id(self.connection, workflow_id)
            row = new_row(self.connection, request, now)
            cursor.execute(postgresql.INSERT_MEMBER_RUN, [*row, wid, position, role])
        else:
            _insert_limited(cursor, queue, [request], now)
            self._add_members(cursor, workflow_id, [(request, position, role)])

    def prune(self, before: datetime, batch: int = 10_000) -> int:
        """Delete the workflows that ended before ``before`` and their member rows; return
        how many workflows."""
        from ..models import TaskWorkflow, WorkflowMember

        if not self.exists():
            return 0
        ended = TaskWorkflow.objects.using(self.alias).filter(
            status__in=["succeeded", "failed"], finished_at__lt=before
        )
        deleted = 0
        while ids := list(ended.values_list("pk", flat=True)[:batch]):
            WorkflowMember.objects.using(self.alias).filter(workflow_id__in=ids).delete()
            count, _ = TaskWorkflow.objects.using(self.alias).filter(pk__in=ids).delete()
            deleted += count
        return deleted


def _insert_limited(
    cursor: Any, queue: RunQueue, requests: Sequence[EnqueueRequest], now: datetime
) -> list[Any]:
    """``queue.insert(requests)`` and the limits of the new runs that have some, on ``cursor``
    (inside the caller's transaction): a chain's next step or a callback of a task with a
    concurrency or rate limit waits for it like any other run of that task."""
    found = queue.insert(requests, now)
    limited = [
        request
        for request, run in zip(requests, found, strict=True)
        if run is None and request.flow is not None
    ]
    if limited:
        queue.flow.set_limits(cursor, limited)
    return found


def _ended_row(row: Sequence[Any]) -> Ended:
    """How a member ended, from a ``WORKFLOW_MEMBERS_ENDED`` row (its result when the row
    has one more column: PostgreSQL's finish returns it)."""
    from ..core.status import ErrorInfo
    from ..workflows.rules import Ended

    task_name, status, error_type, message = row[4:8]
    result = json_value(row[8]) if len(row) > 8 else None
    error = ErrorInfo(error_type, message) if error_type else None
    return Ended(task_name, status, result, error)


def _now() -> datetime:
    return datetime.now(UTC)
