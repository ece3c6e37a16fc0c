"""``TaskRun``: one row per started task, written by ``DatabaseBackend`` and run by the worker."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .status import ErrorInfo, TaskHandle, TaskStatus, new_run_id

if TYPE_CHECKING:
    from .backends.base import Backend

UNFINISHED = (TaskStatus.SCHEDULED, TaskStatus.READY, TaskStatus.RUNNING)
"""Statuses of runs that are not over yet (a ``key`` is unique among these)."""
WAITING = (TaskStatus.SCHEDULED, TaskStatus.READY)
"""Statuses of runs a worker may claim once their ``run_after`` has passed."""

_CHOICES = [(s.value, s.value.capitalize()) for s in TaskStatus if s is not TaskStatus.PENDING]


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
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=Q(status__in=[s.value for s in UNFINISHED]),
                name="dgt_taskrun_unique_unfinished_key",
            )
        ]
        indexes = [
            # Claiming reads only waiting runs, so a million finished rows never slow it down.
            models.Index(
                models.F("priority").desc(),
                "run_after",
                name="dgt_taskrun_claim",
                condition=Q(status__in=[s.value for s in WAITING]),
            ),
            # Finding expired leases reads only running runs. No other index: every index
            # costs each claim and each completion a write.
            models.Index(
                fields=["lease_expires_at"],
                name="dgt_taskrun_lease",
                condition=Q(status=TaskStatus.RUNNING.value),
            ),
        ]

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
