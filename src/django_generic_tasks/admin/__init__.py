"""The admin for ``TaskRun``: filter and search runs, read params/results/tracebacks, and
retry, cancel or run them now (users with the change permission only), through the store."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .. import store
from ..execution.progress import Progress
from ..models import TaskRun
from ..worker.notify import notify_workers
from . import dashboard as _dashboard  # noqa: F401 - registers the dashboard's admin entry
from . import schedules as _schedules
from . import workflows as _workflows  # noqa: F401 - registers the workflows' pages

_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "discarded": "#8d6e63",
    "cancelled": "#757575",
    "running": "#1565c0",
    "ready": "#6a1b9a",
    "scheduled": "#ef6c00",
}


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


_SUMMARY_FIELDS = (
    "id",
    "task_name",
    "coloured_status",
    "waiting_for",
    "progress_bar",
    "queue",
    "priority",
    "key",
    "workflow",
)
_PAYLOAD_FIELDS = ("params_json", "result_json")
_ERROR_FIELDS = ("error_type", "error_message", "traceback")
_HISTORY_FIELDS = ("attempt_history",)
_TIMING_FIELDS = (
    "attempts",
    "run_after",
    "created_at",
    "started_at",
    "finished_at",
    "worker_id",
    "lease_expires_at",
    "timeout",
)


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Runs newest first; filters by status, queue and task; search by run id or key."""

    list_display = (
        "short_id",
        "task_name",
        "coloured_status",
        "waiting_for",
        "progress_bar",
        "queue",
        "priority",
        "attempts",
        "run_after",
        "finished_at",
        "key",
    )
    list_filter = ("status", "queue", "task_name")
    search_fields = ("key",)
    search_help_text = "A run id, or a key (or the start of one)."
    list_per_page = 50
    show_full_result_count = False
    actions = (
        "retry_runs",
        "retry_runs_fresh_budget",
        "cancel_runs",
        "run_now",
        "pause_queues",
        "pause_tasks",
        "resume_queues_and_tasks",
    )
    fieldsets = (
        (None, {"fields": _SUMMARY_FIELDS}),
        ("Params and result", {"fields": _PAYLOAD_FIELDS}),
        ("Last error", {"fields": _ERROR_FIELDS}),
        ("Attempts", {"fields": _HISTORY_FIELDS}),
        ("Timing", {"fields": _TIMING_FIELDS}),
    )
    # Runs are written by backends and workers: every field shown is read-only.
    readonly_fields = (
        *_SUMMARY_FIELDS,
        *_PAYLOAD_FIELDS,
        *_ERROR_FIELDS,
        *_HISTORY_FIELDS,
        *_TIMING_FIELDS,
    )

    _flow_cache: dict[str, tuple[float, list[Any], dict[str, int]]] = {}

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Runs are started by code (``Task.start()``), not typed in."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: TaskRun | None = None) -> bool:
        """A run's own page is read-only for everyone (no Save buttons, a POST is refused);
        the change permission still grants the actions on the list."""
        if obj is not None:
            return False
        return bool(super().has_change_permission(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TaskRun], search_term: str
    ) -> tuple[QuerySet[TaskRun], bool]:
        """A run id matches exactly; anything else searches keys by prefix."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            return queryset.filter(key__startswith=term), False

    @admin.display(description="id", ordering="id")
    def short_id(self, run: TaskRun) -> str:
        """The run id (full, so it can be copied)."""
        return str(run.id)

    @admin.display(description="status", ordering="status")
    def coloured_status(self, run: TaskRun) -> str:
        """The status, in colour."""
        return format_html(
            '<b style="color:{}">{}</b>', _COLOURS.get(run.status, "inherit"), run.status
        )

    @admin.display(description="workflow")
    def workflow(self, run: TaskRun) -> str:
        """The workflow the run belongs to (a link to its page), its kind and the run's place
        in it (``-``: none)."""
        found = store.using(run._state.db or "default").queue.workflows.workflow_of(str(run.pk))
        if found is None:
            return "-"
        workflow_id, kind, position, role = found
        url = reverse("admin:django_generic_tasks_taskworkflow_change", args=[workflow_id])
        place = "callback" if role == "callback" else f"{role} {position}"
        return format_html('<a href="{}">{} {}</a> ({})', url, kind, workflow_id, place)

    @admin.display(description="waiting for")
    def waiting_for(self, run: TaskRun) -> str:
        """Why a waiting run waits: a paused queue or task, a ``RetryAfter``, its rate limit,
        a concurrency slot (``-``: nothing but its turn)."""
        paused, running = self._flow_state(run._state.db or "default")
        return store.waiting_reason(run, timezone.now(), paused, running) or "-"

    def _flow_state(self, database: str) -> tuple[list[Any], dict[str, int]]:
        """What is paused and how many runs hold each slot, read once per second (one page)."""
        now = time.monotonic()
        cached = self._flow_cache.get(database)
        if cached is None or cached[0] < now:
            flow = store.using(database).queue.flow
            cached = (now + 1.0, flow.paused(), flow.running_per_key())
            self._flow_cache[database] = cached
        return cached[1], cached[2]

    @admin.display(description="progress")
    def progress_bar(self, run: TaskRun) -> str:
        """The last reported progress: a bar (when the total is known), counts and message."""
        progress = Progress.from_json(run.progress)
        if progress is None:
            return "-"
        counts = f"{progress.done:g}" + (
            f" / {progress.total:g}" if progress.total is not None else ""
        )
        fraction = progress.fraction
        if fraction is None:
            return format_html('<span title="{}">{} {}</span>', counts, counts, progress.message)
        return format_html(
            '<progress value="{}" max="100" title="{}">{}%</progress> {} {}',
            round(fraction * 100),
            counts,
            round(fraction * 100),
            counts,
            progress.message,
        )

    @admin.display(description="attempts")
    def attempts(self, run: TaskRun) -> str:
        """Attempts started / allowed."""
        return f"{run.attempt} / {run.max_attempts}"

    @admin.display(description="history")
    def attempt_history(self, run: TaskRun) -> str:
        """Each attempt: when, on which worker, how it ended and its error (the last 10
        earlier attempts, then the last one)."""
        records = run.attempt_history()
        if not records:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    record.attempt,
                    _when(record.started_at),
                    _when(record.ended_at),
                    record.worker or "-",
                    record.outcome,
                    f"{record.error_type}: {record.error_message}" if record.error_type else "",
                )
                for record in records
            ),
        )
        return format_html(
            '<table class="dgt-attempts"><thead><tr><th>attempt</th><th>started</th>'
            "<th>ended</th><th>worker</th><th>outcome</th><th>error</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="params")
    def params_json(self, run: TaskRun) -> str:
        """The params, pretty-printed."""
        return format_html("<pre>{}</pre>", _pretty(run.params))

    @admin.display(description="result")
    def result_json(self, run: TaskRun) -> str:
        """The return value, pretty-printed."""
        return format_html("<pre>{}</pre>", _pretty(run.result))

    @admin.display(description="traceback")
    def traceback(self, run: TaskRun) -> str:
        """The last error's traceback, as text."""
        return format_html("<pre>{}</pre>", run.error_traceback or "-")

    @admin.action(
        description="Retry selected runs: exactly one more attempt each (failed, discarded, "
        "cancelled)",
        permissions=["change"],
    )
    def retry_runs(self, request: HttpRequest, queryset: QuerySet[TaskRun]) -> None:
        """Run finished-but-unsuccessful runs again, as one more attempt (``max_attempts``
        grows by one when the budget was used up: 8 -> 9)."""
        self._retry(request, queryset, fresh_budget=False)

    @admin.action(
        description="Retry selected runs with a fresh attempt budget (the task's max_attempts)",
        permissions=["change"],
    )
    def retry_runs_fresh_budget(self, request: HttpRequest, queryset: QuerySet[TaskRun]) -> None:
        """Run finished-but-unsuccessful runs again with the attempt counter restarted: the
        task's whole ``max_attempts`` budget, retries included."""
        self._retry(request, queryset, fresh_budget=True)

    def _retry(self, request: HttpRequest, queryset: QuerySet[TaskRun], fresh_budget: bool) -> None:
        retried, blocked, skipped = store.using(queryset.db).operations.retry(
            queryset, timezone.now(), fresh_budget=fresh_budget
        )
        if retried:
            notify_workers(queryset.db)
        budget = " with a fresh attempt budget" if fresh_budget else ""
        self.message_user(request, f"Retried {retried} runs{budget}.", messages.SUCCESS)
        if blocked:
            self.message_user(
                request,
                "Not retried, another unfinished run of the task holds the same key: "
                + ", ".join(blocked),
                messages.WARNING,
            )
        if skipped:
            self.message_user(
                request, f"Skipped {skipped} runs that are not failed/discarded/cancelled."
            )

    @admin.action(description="Cancel selected runs (not finished)", permissions=["change"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[TaskRun]) -> None:
        """Cancel waiting runs at once; ask running ones to stop (``check_cancelled()``)."""
        count = store.using(queryset.db).operations.cancel(queryset, timezone.now())
        self.message_user(request, f"Cancelled {count} runs.", messages.SUCCESS)

    @admin.action(description="Run selected runs now (scheduled or ready)", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[TaskRun]) -> None:
        """Make waiting runs due immediately, ahead of their schedule."""
        count = store.using(queryset.db).operations.make_due(queryset, timezone.now())
        if count:
            notify_workers(queryset.db)
        self.message_user(request, f"{count} runs are due now.", messages.SUCCESS)

    @admin.action(description="Pause the queues of selected runs", permissions=["change"])
    def pause_queues(self, request: HttpRequest, queryset: QuerySet[TaskRun]) -> None:
        """Pause every queue the selected runs are on: their runs wait until resumed."""
        self._pause(request, queryset, "queue", "queue")

    @admin.action(description="Pause the tasks of selected runs", permissions=["change"])
    def pause_tasks(self, request: HttpRequest, queryset: QuerySet[TaskRun]) -> None:
        """Pause every task the selected runs are runs of, on every queue."""
        self._pause(request, queryset, "task", "task_name")

    @admin.action(
        description="Resume the queues and tasks of selected runs", permissions=["change"]
    )
    def resume_queues_and_tasks(self, request: HttpRequest, queryset: QuerySet[TaskRun]) -> None:
        """Resume the selected runs' queues and tasks (those that were paused)."""
        flow = store.using(queryset.db).queue.flow
        self._flow_cache.clear()
        resumed = [
            f"{kind} {name}"
            for kind, field in (("queue", "queue"), ("task", "task_name"))
            for name in sorted(set(queryset.values_list(field, flat=True)))
            if flow.resume(kind, name)
        ]
        if resumed:
            notify_workers(queryset.db)
        self.message_user(
            request, f"Resumed: {', '.join(resumed) or 'nothing was paused'}.", messages.SUCCESS
        )

    def _pause(
        self, request: HttpRequest, queryset: QuerySet[TaskRun], kind: str, field: str
    ) -> None:
        flow = store.using(queryset.db).queue.flow
        self._flow_cache.clear()
        names = sorted(set(queryset.values_list(field, flat=True)))
        now = timezone.now()
        paused = [name for name in names if flow.pause(kind, name, now)]
        self.message_user(
            request,
            f"Paused {kind}s: {', '.join(paused) or 'none (already paused)'}. Their waiting runs "
            "wait until resumed; running ones go on.",
            messages.SUCCESS,
        )


_schedules.register(admin.site)
