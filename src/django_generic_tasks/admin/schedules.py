"""The admin's *Schedules* page: every periodic task with its next and last fire time and
the last run's status, and a *run now* button (users with the change permission only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from ..models import ScheduleSlot
from ..support.compat import BREADCRUMBS_AS_LIST

CHANGELIST = "django_generic_tasks_scheduleslot_changelist"
RUN_NOW = "django_generic_tasks_scheduleslot_run_now"


@dataclass(frozen=True)
class ScheduleRow:
    """One line of the page."""

    id: str
    task_name: str
    timing: str
    tz: str
    catch_up: str
    next_fire: str
    last_fire: str | None
    last_run_id: str | None
    last_status: str


class SchedulesAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Lists declared schedules instead of slot rows; slots are never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Slots are written by schedulers only."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Slots are written by schedulers only."""
        return False

    def get_urls(self) -> list[URLPattern]:
        """The page, and the *run now* POST target."""
        site = self.admin_site
        return [
            path("run-now/", site.admin_view(self.run_now_view), name=RUN_NOW),
            path("", site.admin_view(self.changelist_view), name=CHANGELIST),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Every schedule with its next/last fire time and last run status."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        from ..schedules.registry import all_entries

        rows, problem = [], None
        try:
            entries = all_entries()
        except Exception as exc:  # a bad TASKS_SCHEDULES must not take the page down
            entries, problem = [], str(exc)
        rows = _rows(entries, self.model.objects.db)
        context = {
            **self.admin_site.each_context(request),
            "title": "Schedules",
            "opts": self.model._meta,
            "breadcrumbs_as_list": BREADCRUMBS_AS_LIST,
            "rows": rows,
            "problem": problem,
            "can_run": self.has_change_permission(request),
            "run_now_url": reverse(f"admin:{RUN_NOW}"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/django_generic_tasks/schedules.html", context)

    def run_now_view(self, request: HttpRequest) -> HttpResponse:
        """Start a schedule's task with its params now (POST, change permission)."""
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        from ..schedules.firing import run_now
        from ..schedules.registry import all_entries

        wanted = request.POST.get("schedule_id", "")
        entry = next((e for e in all_entries() if e.id == wanted), None)
        if entry is None:
            self.message_user(request, f"There is no schedule {wanted!r}.", messages.ERROR)
        else:
            handle = run_now(entry)
            self.message_user(
                request, f"Started {entry.task_name} for {entry.id}: run {handle.id}."
            )
        return HttpResponseRedirect(reverse(f"admin:{CHANGELIST}"))


def _rows(entries: list[Any], database: str) -> list[ScheduleRow]:
    from ..store.slots import using

    now = datetime.now(UTC)
    latest = using(database).latest(e.id for e in entries) if entries else {}
    statuses = _statuses([s.run_id for s in latest.values()], database)
    rows = []
    for entry in entries:
        last = latest.get(entry.id)
        rows.append(
            ScheduleRow(
                id=entry.id,
                task_name=entry.task_name,
                timing=entry.describe,
                tz=entry.schedule.tz if entry.schedule.cron is not None else "UTC (interval)",
                catch_up=entry.schedule.catch_up,
                next_fire=_local(entry.timing.next_after(now), entry),
                last_fire=_local(last.slot_at, entry) if last else None,
                last_run_id=last.run_id if last else None,
                last_status=statuses.get(last.run_id, "—") if last else "—",
            )
        )
    return rows


def _local(moment: datetime, entry: Any) -> str:
    """``moment`` in the schedule's zone (UTC for intervals), to the second."""
    zone = entry.timing.zone or UTC
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"


def _statuses(run_ids: list[str], database: str) -> dict[str, str]:
    """Status of each run: from ``TaskRun`` when stored there, else from the backend."""
    from ..conf import get_backend
    from ..models import TaskRun
    from ..store.schema import parse_run_id

    ids = [u for u in (parse_run_id(r) for r in run_ids) if u is not None]
    found = {
        str(pk): status
        for pk, status in TaskRun.objects.using(database)
        .filter(pk__in=ids)
        .values_list("pk", "status")
    }
    backend = get_backend()
    if backend.supports_results:
        for run_id in run_ids:
            if run_id not in found:
                try:
                    found[run_id] = backend.get_result(run_id).status.value
                except Exception:
                    found[run_id] = "unknown"
    return found


def register(site: admin.AdminSite) -> None:
    """Add the *Schedules* page to ``site``."""
    site.register(ScheduleSlot, SchedulesAdmin)
