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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone

from .core.handles import TaskHandle
from .core.status import AttemptRecord, ErrorInfo, TaskStatus, new_run_id
from .execution.progress import Progress
from .store.statuses import FINISHED, STORED, UNFINISHED, WAITING

if TYPE_CHECKING:
    from .backends.base import Backend

__all__ = [
    "UNFINISHED",
    "WAITING",
    "Dashboard",
    "FlowPause",
    "QueueSample",
    "RateBucket",
    "RunRollup",
    "ScheduleSlot",
    "TaskRun",
    "WorkerHeartbeat",
]

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
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When a cancel of the running run was requested."
    )
    progress = models.JSONField(
        null=True, blank=True, help_text="The last progress the running task reported."
    )
    steps = models.JSONField(
        null=True,
        blank=True,
        help_text="The completed steps and the current step's cursor (self.step()).",
    )
    awaited_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When someone first waited for the run (handle.wait() on PostgreSQL: its "
        "finish sends a notice).",
    )
    history = models.JSONField(
        null=True,
        blank=True,
        help_text="Earlier attempts (retried or lost), oldest first, at most the last 10; "
        "the last attempt is the run itself.",
    )
    trace_context = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="W3C traceparent of the span that started the run (OpenTelemetry).",
    )
    concurrency_key = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="The runs sharing this key share the task's concurrency limit.",
    )
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    rate_key = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="The runs sharing this key share the task's rate limit.",
    )
    rate_interval = models.FloatField(
        null=True, blank=True, help_text="Seconds between two starts at the rate limit."
    )
    rate_turn = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The attempt whose start the rate limit has given a time (run_after).",
    )

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

    def attempt_history(self) -> tuple[AttemptRecord, ...]:
        """The run's attempts, oldest first: the earlier ones it keeps in ``history``, then
        its last (running or finished) attempt, read from the row itself."""
        records = [_record(entry) for entry in self.history or () if isinstance(entry, dict)]
        last = self.task_status
        started = last is TaskStatus.RUNNING or last in FINISHED
        if self.attempt and started and all(r.attempt != self.attempt for r in records):
            records.append(
                AttemptRecord(
                    attempt=self.attempt,
                    outcome=self.status,
                    worker=self.worker_id or "",
                    started_at=self.started_at,
                    ended_at=self.finished_at,
                    error_type=self.error_type,
                    error_message=self.error_message,
                )
            )
        return tuple(records)

    def to_handle(self, backend: Backend | None = None) -> TaskHandle[Any]:
        """A ``TaskHandle`` describing this run."""
        return TaskHandle(
            id=str(self.id),
            name=self.task_name,
            status=self.task_status,
            backend=backend,
            result=self.result,
            error=self.error,
            attempts=self.attempt,
            progress=Progress.from_json(self.progress) if self.progress is not None else None,
            history=self.attempt_history(),
        )


def _record(entry: dict[str, Any]) -> AttemptRecord:
    """A stored history entry (``store.rows.history_entry``) as an ``AttemptRecord``."""
    return AttemptRecord(
        attempt=int(entry.get("attempt") or 0),
        outcome=str(entry.get("outcome") or ""),
        worker=str(entry.get("worker") or ""),
        started_at=_moment(entry.get("started_at")),
        ended_at=_moment(entry.get("ended_at")),
        error_type=str(entry.get("error_type") or ""),
        error_message=str(entry.get("error_message") or ""),
    )


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


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


class RunRollup(models.Model):
    """Finished attempts per minute, task, queue and outcome, kept by the worker as it writes
    outcomes back, so the dashboard never scans the runs table (``tasks_prune`` prunes it).

    ``outcome`` is the final status, or ``retried`` for an attempt that will be retried;
    ``d0`` ... ``d11`` count attempts by duration (``store.rollups.DURATION_BOUNDS``).
    """

    id = models.BigAutoField(primary_key=True)
    minute = models.BigIntegerField(help_text="Minutes since the Unix epoch (UTC).")
    task_name = models.CharField(max_length=255)
    queue = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16)
    runs = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0, help_text="Total attempt duration.")
    last_run_id = models.CharField(max_length=36, blank=True, default="")
    d0 = models.BigIntegerField(default=0)
    d1 = models.BigIntegerField(default=0)
    d2 = models.BigIntegerField(default=0)
    d3 = models.BigIntegerField(default=0)
    d4 = models.BigIntegerField(default=0)
    d5 = models.BigIntegerField(default=0)
    d6 = models.BigIntegerField(default=0)
    d7 = models.BigIntegerField(default=0)
    d8 = models.BigIntegerField(default=0)
    d9 = models.BigIntegerField(default=0)
    d10 = models.BigIntegerField(default=0)
    d11 = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "run rollup"
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "task_name", "queue", "outcome"], name="dgt_rollup_key"
            )
        ]


class QueueSample(models.Model):
    """Queue depth and lag of one queue at one minute, sampled by the workers' heartbeat."""

    id = models.BigAutoField(primary_key=True)
    minute = models.BigIntegerField(help_text="Minutes since the Unix epoch (UTC).")
    queue = models.CharField(max_length=100)
    waiting = models.BigIntegerField(default=0, help_text="Due runs not yet started.")
    scheduled = models.BigIntegerField(default=0, help_text="Runs waiting for their time.")
    running = models.BigIntegerField(default=0)
    lag = models.FloatField(default=0.0, help_text="Seconds the oldest due run has waited.")

    class Meta:
        verbose_name = "queue sample"
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["minute", "queue"], name="dgt_queue_sample_key")
        ]


class WorkerHeartbeat(models.Model):
    """One running ``tasks_worker``: written at start and on each heartbeat, deleted when it
    stops cleanly; a worker is live while ``expires_at`` is ahead."""

    worker_id = models.CharField(max_length=255, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.CharField(max_length=1000, blank=True, default="", help_text="Empty: all.")
    concurrency = models.IntegerField()
    runs_done = models.BigIntegerField(default=0)
    started_at = models.DateTimeField()
    last_beat = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "worker heartbeat"
        default_permissions = ()


class FlowPause(models.Model):
    """A paused queue or task: workers claim none of its runs until it is resumed (written
    only through ``django_generic_tasks.store.flow``)."""

    kind = models.CharField(max_length=8, help_text="queue or task")
    name = models.CharField(max_length=255)
    paused_at = models.DateTimeField()

    class Meta:
        verbose_name = "paused queue or task"
        verbose_name_plural = "paused queues and tasks"
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="dgt_pause_key")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} (paused since {self.paused_at.isoformat()})"


class RateBucket(models.Model):
    """One rate limit key's next free start (GCRA), shared by every worker (written only
    through ``django_generic_tasks.store.flow``, in the claim's transaction)."""

    key = models.CharField(max_length=255, primary_key=True)
    next_at = models.DateTimeField(help_text="The earliest start of the key's next run.")

    class Meta:
        verbose_name = "rate limit bucket"
        default_permissions = ()


class Dashboard(models.Model):
    """No table: the admin entry of the dashboard (``<admin>/django_generic_tasks/dashboard/``),
    shown to staff who may view task runs."""

    id = models.BigAutoField(primary_key=True)

    class Meta:
        managed = False
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
        default_permissions = ()


class TaskWorkflow(models.Model):
    """A chain or group of runs (``tasks.chain``, ``tasks.group``): what it is made of, how
    far it got, how it ended. Written only through ``store.workflows``."""

    id = models.UUIDField(primary_key=True, default=_new_uuid, editable=False)
    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=16, default="running")
    spec = models.TextField(help_text="The steps' task names, the callback, its options (JSON).")
    total = models.PositiveIntegerField(
        null=True, help_text="Steps of a chain, members of a group or batch (once closed)."
    )
    done = models.PositiveIntegerField(default=0, help_text="Members (steps) that ended.")
    failed = models.PositiveIntegerField(default=0, help_text="Members that did not succeed.")
    failed_position = models.IntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    callback_run = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "task workflow"

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"


class WorkflowMember(models.Model):
    """One run of a workflow: a chain's step or a group's member or callback."""

    run_id = models.UUIDField(primary_key=True)
    workflow_id = models.UUIDField()
    position = models.IntegerField()
    role = models.CharField(max_length=16, default="member")
    done = models.BooleanField(default=False, help_text="Its end was counted.")

    class Meta:
        indexes = [models.Index(fields=["workflow_id", "position"], name="dgt_wfmember_pos")]

    def __str__(self) -> str:
        return f"{self.role} {self.position} of {self.workflow_id}"
