"""The workflows' admin pages: each chain, group or batch, its runs in order and its callback."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import TaskRun, TaskWorkflow, WorkflowMember


@admin.register(TaskWorkflow)
class TaskWorkflowAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Workflows newest first, filtered by kind and status; each page lists its runs (links
    to their pages) with their status. Read-only: workflows are written by the store."""

    list_display = ("id", "kind", "status", "ended", "failed", "failed_position", "created_at")
    list_filter = ("kind", "status")
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = (
        "id",
        "kind",
        "status",
        "ended",
        "failed",
        "failed_position",
        "error_type",
        "error_message",
        "created_at",
        "finished_at",
        "runs",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Workflows are started by code (``tasks.chain()``...), not typed in."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Read-only for everyone."""
        return False

    @admin.display(description="ended")
    def ended(self, workflow: TaskWorkflow) -> str:
        """Runs that ended, of how many (a batch still open: of ?)."""
        total = "?" if workflow.total is None else str(workflow.total)
        return f"{workflow.done} / {total}"

    @admin.display(description="runs (in order; the callback last)")
    def runs(self, workflow: TaskWorkflow) -> SafeString:
        """Each run of the workflow: position, role, task, status, a link to its page."""
        members = list(
            WorkflowMember.objects.using(workflow._state.db)
            .filter(workflow_id=workflow.pk)
            .order_by("position")[:1000]
        )
        found = {
            run.pk: run
            for run in TaskRun.objects.using(workflow._state.db)
            .filter(pk__in=[m.run_id for m in members])
            .only("id", "task_name", "status")
        }
        rows = []
        for member in members:
            run = found.get(member.run_id)
            url = reverse("admin:django_generic_tasks_taskrun_change", args=[member.run_id])
            rows.append(
                (
                    member.position,
                    member.role,
                    url,
                    run.task_name if run else "(pruned)",
                    run.status if run else "",
                )
            )
        if not rows:
            return format_html("{}", "none")
        body = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td>{}</td></tr>',
            rows,
        )
        return format_html(
            "<table><tr><th>#</th><th>role</th><th>task</th><th>status</th></tr>{}</table>",
            body,
        )
