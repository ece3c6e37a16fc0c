"""``WorkflowReads``: what the workflows' rows say (which workflow a run belongs to, how each
member ended, a workflow's state, counts by status); ``WorkflowBook`` (``store.workflows``)
adds the writes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .base import StorePart
from .schema import db_id, parse_run_id
from .sql import common

if TYPE_CHECKING:
    from ..workflows.handle import WorkflowState
    from ..workflows.rules import Ended

__all__ = ["WorkflowReads", "json_value"]


class WorkflowReads(StorePart):
    """Reading workflows on one connection."""

    def workflow_of(self, run_id: str) -> tuple[str, str, int, str] | None:
        """(workflow id, kind, position, role) of run ``run_id``; ``None``: none."""
        from ..models import TaskWorkflow, WorkflowMember

        pk = parse_run_id(run_id)
        if pk is None or not self.exists():
            return None
        member = WorkflowMember.objects.using(self.alias).filter(run_id=pk).first()
        if member is None:
            return None
        kind = (
            TaskWorkflow.objects.using(self.alias)
            .filter(pk=member.workflow_id)
            .values_list("kind", flat=True)
            .first()
        )
        return str(member.workflow_id), kind or "", member.position, member.role

    def counts(self, workflow_id: str) -> dict[str, int]:
        """Batch ``workflow_id``'s runs by status."""
        from django.db.models import Count

        from ..models import WorkflowMember

        members = WorkflowMember.objects.using(self.alias).filter(workflow_id=workflow_id)
        found = (
            self.runs.filter(pk__in=members.values("run_id"))
            .values_list("status")
            .annotate(n=Count("id"))
        )
        return dict(found)

    def _ended(self, run_ids: set[str]) -> dict[str, Ended]:
        from ..core.status import ErrorInfo
        from ..workflows.rules import Ended

        found = self.runs.filter(pk__in=list(run_ids)).values_list(
            "id", "task_name", "status", "result", "error_type", "error_message"
        )
        return {
            str(pk): Ended(name, status, result, ErrorInfo(kind, message) if kind else None)
            for pk, name, status, result, kind, message in found
        }

    def _member_rows(self, workflow_id: str) -> list[tuple[str, int, str]]:
        from ..models import WorkflowMember

        return [
            (str(run_id), position, role)
            for run_id, position, role in WorkflowMember.objects.using(self.alias)
            .filter(workflow_id=workflow_id)
            .order_by("position")
            .values_list("run_id", "position", "role")
        ]

    def members(self, workflow_id: str) -> list[Ended]:
        """How each member of a group ended, in member order (a member whose run was pruned
        meanwhile counts as failed): one read, however many members."""
        from ..core.status import ErrorInfo
        from ..workflows.rules import Ended

        pruned = Ended("", "failed", None, ErrorInfo("Pruned", "the run was pruned"))
        wid = db_id(self.connection, workflow_id)
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "postgresql":
                from .sql import postgresql

                cursor.execute(postgresql.WORKFLOW_MEMBER_RESULTS, [wid])
                found = json.loads(cursor.fetchone()[0])
            else:
                cursor.execute(common.WORKFLOW_MEMBER_RESULTS, [wid])
                found = [(*row[:2], json_value(row[2]), *row[3:]) for row in cursor.fetchall()]
        return [
            pruned
            if name is None
            else Ended(name, status, result, ErrorInfo(kind, message) if kind else None)
            for name, status, result, kind, message in found
        ]

    def status_counts(self, since: datetime) -> dict[str, int]:
        """Workflows by status: every running one, and those that ended since ``since``
        (the dashboard's counts; all zero before the workflow tables exist)."""
        counts = {"running": 0, "succeeded": 0, "failed": 0}
        if not self.exists():
            return counts
        with self.connection.cursor() as cursor:
            cursor.execute(common.WORKFLOW_STATUS_COUNTS, [self.dt(since)])
            for status, count in cursor.fetchall():
                counts[status] = int(count)
        return counts

    def exists(self) -> bool:
        """Whether the workflow tables exist (migration 0012 applied)."""

        def probe() -> bool:
            with self.connection.cursor() as cursor:
                return "django_generic_tasks_workflowmember" in (
                    self.connection.introspection.table_names(cursor)
                )

        return self.ready("workflows", probe, "The workflow tables are missing (run migrate)")

    def state(self, workflow_id: str) -> WorkflowState:
        """The workflow ``workflow_id`` now (``RunNotFoundError`` when there is none)."""
        from ..core.status import ErrorInfo
        from ..exceptions import RunNotFoundError
        from ..models import TaskWorkflow
        from ..workflows.handle import WorkflowState

        pk = parse_run_id(workflow_id)
        row = None if pk is None else TaskWorkflow.objects.using(self.alias).filter(pk=pk).first()
        if row is None:
            raise RunNotFoundError(f"There is no workflow {workflow_id!r}.")
        json.loads(row.spec)
        members = self._member_rows(str(row.pk))
        runs = tuple(run_id for run_id, _, role in members if role == "member")
        names = {
            str(pk): name
            for pk, name in self.runs.filter(pk__in=[m[0] for m in members]).values_list(
                "id", "task_name"
            )
        }
        callback = str(row.callback_run) if row.callback_run else None
        result_task: str | None = None
        result: Any = None
        if row.status == "succeeded":
            if row.kind == "chain":
                result_task = names.get(runs[-1]) if runs else None
                result = self.runs.filter(pk=runs[-1]).values_list("result", flat=True).first()
            elif callback is not None:
                result_task = names.get(callback)
                result = self.runs.filter(pk=callback).values_list("result", flat=True).first()
            else:
                result = [m.result for m in self.members(str(row.pk))]
        return WorkflowState(
            id=str(row.pk),
            kind=row.kind,
            status=row.status,
            total=row.total,
            done=row.done,
            runs=runs,
            tasks=tuple(names.get(r, "") for r in runs),
            callback_run=callback,
            failed_position=row.failed_position,
            error=ErrorInfo(row.error_type, row.error_message) if row.error_type else None,
            result_task=result_task,
            result=result,
        )


def json_value(value: Any) -> Any:
    """A JSON column's value as a raw cursor returns it (text on every database Django
    configures) as data."""
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    return json.loads(value) if isinstance(value, str) else value
