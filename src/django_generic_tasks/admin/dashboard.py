"""The admin dashboard (``<admin>/django_generic_tasks/dashboard/``): throughput, queues,
tasks and workers, read through the store (rollups and unfinished runs only), refreshed in
place every few seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from .. import store
from ..models import Dashboard
from ..store.rollups import OUTCOMES, epoch_minute, percentile
from ..support.compat import BREADCRUMBS_AS_LIST
from .charts import Series, colour, figure

REFRESH_SECONDS = 5
"""How often the page fetches fresh figures."""
WINDOWS = (
    ("hour", "Last hour, per minute", 60, 1, "%H:%M"),
    ("day", "Last 24 hours, per hour", 24 * 60, 60, "%H:00"),
    ("week", "Last 7 days, per 6 hours", 7 * 24 * 60, 6 * 60, "%a %H:00"),
)
"""Throughput charts: (id, title, minutes, minutes per bar, label format)."""
TASK_WINDOW = 24 * 60
"""Minutes the per-task table covers."""


def _label(minute: int, fmt: str) -> str:
    return timezone.localtime(datetime.fromtimestamp(minute * 60, UTC)).strftime(fmt)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "> 300 s"
    return f"≤ {value * 1000:g} ms" if value < 1 else f"≤ {value:g} s"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def context(database: str, now: datetime) -> dict[str, Any]:
    """Everything the dashboard shows, read through the store on ``database``."""
    runs = store.using(database).observations
    charts = []
    finished_hour = 0
    for chart_id, title, minutes, bucket, fmt in WINDOWS:
        buckets = runs.throughput(now, minutes, bucket)
        present = [o for o in OUTCOMES if any(counts.get(o) for _, counts in buckets)]
        outcomes = present or list(OUTCOMES[:4])
        series = [
            Series(o, [counts.get(o, 0) for _, counts in buckets], colour(o, i))
            for i, o in enumerate(outcomes)
        ]
        labels = [_label(start, fmt) for start, _ in buckets]
        if chart_id == "hour":
            finished_hour = sum(sum(counts.values()) for _, counts in buckets)
        charts.append(
            figure(f"dgt-throughput-{chart_id}", f"Finished attempts: {title}", labels, series)
        )

    queues = runs.queue_depths(now)
    workers = store.using(database).workers.live(now)
    unserved = {q.queue for q in store.unserved(queues, workers)}
    history = runs.queue_history(now, 60)
    last = epoch_minute(now)
    sampled = list(range(last - 59, last + 1))
    names = sorted({s.queue for s in history})
    by_key = {(s.minute, s.queue): s for s in history}
    labels = [_label(m, "%H:%M") for m in sampled]
    queue_charts = []
    if history:
        for field, title in (("waiting", "Due runs waiting"), ("lag", "Oldest wait (seconds)")):
            series = [
                Series(
                    q,
                    [
                        float(getattr(by_key[(m, q)], field, 0)) if (m, q) in by_key else 0.0
                        for m in sampled
                    ],
                    colour(q, i + 10),
                )
                for i, q in enumerate(names)
            ]
            queue_charts.append(
                figure(
                    f"dgt-queue-{field}",
                    f"{title} per queue, last hour",
                    labels,
                    series,
                    kind="lines",
                )
            )

    failures = {r.task_name: r for r in runs.last_failures(now, 7 * 24 * 60, limit=50)}
    tasks: list[dict[str, Any]] = [
        {
            "name": t.task_name,
            "runs": t.runs,
            "failures": t.failures,
            "failure_rate": f"{t.failure_rate:.1%}",
            "retries": t.retries,
            "p50": _seconds(percentile(t.histogram, 0.5)),
            "p95": _seconds(percentile(t.histogram, 0.95)),
            "last_failure": failures.get(t.task_name),
        }
        for t in runs.task_figures(now, TASK_WINDOW)
    ]
    for task in tasks:
        run = task["last_failure"]
        if run is not None:
            task["last_failure_url"] = reverse(
                "admin:django_generic_tasks_taskrun_change", args=[run.pk]
            )
    flow = store.using(database).queue.flow
    return {
        "now": now,
        "workflows": store.using(database).queue.workflows.status_counts(
            now - timedelta(minutes=TASK_WINDOW)
        ),
        "finished_hour": finished_hour,
        "paused": [
            {"kind": kind, "name": name, "since": since} for kind, name, since in flow.paused()
        ],
        "held_back": [
            {"reason": reason, "key": key, "runs": runs, "detail": detail}
            for reason, key, runs, detail in flow.waiting(now)
        ],
        "limits": task_limits(),
        "throughput_charts": charts,
        "queues": [
            {
                "q": q,
                "oldest": _age(q.oldest_wait) if q.waiting else "-",
                "unserved": q.queue in unserved,
            }
            for q in queues
        ],
        "unserved": sorted(unserved),
        "queue_charts": queue_charts,
        "tasks": tasks,
        "workers": workers,
        "refresh": REFRESH_SECONDS,
    }


def task_limits() -> list[dict[str, Any]]:
    """The registered tasks with flow control limits, by name: concurrency and rate."""
    from ..core.registry import registry

    rows = []
    for task in sorted(registry, key=lambda cls: cls.name):
        if task.concurrency_limit is None and task.rate_limit is None:
            continue
        rows.append(
            {
                "name": task.name,
                "concurrency": task.concurrency_limit,
                "rate": task.rate_limit,
                "per_key": "concurrency_key" in vars(task) or "rate_limit_key" in vars(task),
            }
        )
    return rows


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The dashboard's admin entry: shown to staff who may view task runs."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Whoever may view (or change) task runs may see the dashboard."""
        user: Any = request.user
        return bool(
            user.has_perm("django_generic_tasks.view_taskrun")
            or user.has_perm("django_generic_tasks.change_taskrun")
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Listed on the admin index for the same users."""
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Nothing to add."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nothing to change."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nothing to delete."""
        return False

    def get_urls(self) -> list[URLPattern]:
        """Only the dashboard itself: the model has no table, so no object pages."""
        opts = self.model._meta
        view = self.admin_site.admin_view(self.changelist_view)
        return [path("", view, name=f"{opts.app_label}_{opts.model_name}_changelist")]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The dashboard; ``?partial=1``: only the part the page refreshes."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        from ..models import TaskRun

        data = context(TaskRun.objects.db, timezone.now())
        if request.GET.get("partial"):
            return TemplateResponse(request, "django_generic_tasks/dashboard_body.html", data)
        data.update(
            self.admin_site.each_context(request),
            title="Task dashboard",
            opts=self.model._meta,
            breadcrumbs_as_list=BREADCRUMBS_AS_LIST,
        )
        return TemplateResponse(request, "django_generic_tasks/dashboard.html", data)
