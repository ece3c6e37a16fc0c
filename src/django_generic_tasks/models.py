"""``TaskRun``: one row per started task, written by ``DatabaseBackend`` and run by the worker.

Rows are read and written only through ``django_generic_tasks.store``. The indexes the store
relies on differ per database (partial indexes on PostgreSQL and SQLite, generated columns on
MariaDB/MySQL, which have no partial indexes), so migration 0003 creates them, not ``Meta``:
- a task's ``key`` is unique among that task's unfinished runs (``dgt_taskrun_open_key``);
- claims read only waiting runs (``dgt_taskrun_claim``), so finished rows never slow them;
- finding expired leases reads only running runs (``dgt_taskrun_lease``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import models
from django.utils import timezone

from .status import ErrorInfo, TaskHandle, TaskStatus, new_run_id
from .store.statuses import STORED, UNFINISHED, WAITING

if TYPE_CHECKING:
    from .backends.base import Backend

__all__ = ["UNFINISHED", "WAITING", "TaskRun"]

_CHOICES = [(s.value, s.value.capitalize()) for s in STORED]


def _new_uuid() -> uuid.UUID:
    return uuid.UUID(new_run_id())


class TaskRun(models.Model):
    """One started task: its params, where it is in its life, and how it ended."""

    id = models.UUIDField(primary_key=True, default=_new_uuid, editable=False)
    task_name = models.CharField(max_length=255)
    params = models.JSONField(default=dict)
    queue = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=_CHOICES, default=TaskStatus.READY.value)
    attempt = models.PositiveIntegerField(default=0, help_text="Attempts started so far.")
    max_attempts = models.PositiveIntegerField(default=1)
    timeout = models.FloatField(null=True, blank=True)
    run_after = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=255, null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error_type = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    error_traceback = models.TextField(blank=True, default="")
    key = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        verbose_name = "task run"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.task_name} {self.id} ({self.status})"

    @property
    def task_status(self) -> TaskStatus:
        """``status`` as a ``TaskStatus``."""
        return TaskStatus(self.status)

    @property
    def error(self) -> ErrorInfo | None:
        """The last error, or ``None`` when the last attempt did not fail."""
        if not self.error_type:
            return None
        return ErrorInfo(self.error_type, self.error_message, self.error_traceback)

    def to_handle(self, backend: Backend | None = None) -> TaskHandle:
        """A ``TaskHandle`` describing this run."""
        return TaskHandle(
            id=str(self.id),
            name=self.task_name,
            status=self.task_status,
            backend=backend,
            result=self.result,
            error=self.error,
            attempts=self.attempt,
        )


class ScheduleSlot(models.Model):
    """One slot of a schedule that a scheduler claimed: unique per schedule and slot time.

    Written only through ``django_generic_tasks.store.slots``. ``fired_at`` is set once the
    run was handed to the backend (on ``DatabaseBackend`` in the same transaction as the
    claim); a claim without it is retried by any scheduler once ``lease_until`` passes.
    """

    schedule_id = models.CharField(max_length=255)
    slot_at = models.DateTimeField()
    run_id = models.CharField(max_length=36)
    claimed_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    owner = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        verbose_name = "schedule"
        verbose_name_plural = "schedules"
        constraints = [
            models.UniqueConstraint(fields=["schedule_id", "slot_at"], name="dgt_slot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.slot_at.isoformat()}"
