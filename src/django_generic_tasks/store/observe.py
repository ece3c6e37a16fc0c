"""``Observations``: the per-minute rollups and queue samples, written by the worker, and what
the dashboard, ``tasks_status`` and metrics read: queue depths, throughput, per-task figures.

Every read here is cheap with a big history: queue depths read only unfinished runs (the
claim and lease indexes), throughput and per-task figures read the per-minute rollups
(``rollups.py``), never the finished runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.status import TaskStatus
from . import statuses as st
from .base import StorePart
from .rollups import FAILURES, Rollup, epoch_minute
from .sql import rows
from .transient import retry_transient

if TYPE_CHECKING:
    from ..models import TaskRun


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """One queue now: due runs waiting, runs waiting for their time, running runs, and how
    long the oldest due run has waited (seconds; 0 when none waits)."""

    queue: str
    waiting: int = 0
    scheduled: int = 0
    running: int = 0
    oldest_wait: float = 0.0


@dataclass(frozen=True, slots=True)
class TaskFigures:
    """One task over a window: final runs, failures, retries, and its duration histogram."""

    task_name: str
    runs: int
    failures: int
    retries: int
    seconds: float
    histogram: list[int] = field(default_factory=list)

    @property
    def failure_rate(self) -> float:
        """Failed or discarded runs / final runs (0 with none)."""
        return self.failures / self.runs if self.runs else 0.0


class Observations(StorePart):
    """The rollups and queue samples on one connection, and the reads over them."""

    # -- writes (the worker) ----------------------------------------------------------------

    def rollups_ready(self) -> bool:
        """Whether the rollup table exists (migration 0004 applied). Until it does, outcomes
        are written without rollups, so a worker deployed before ``migrate`` keeps working."""
        from ..models import RunRollup

        def probe() -> bool:
            with self.connection.cursor() as cursor:
                names = self.connection.introspection.table_names(cursor)
            return RunRollup._meta.db_table in names

        return self.ready(
            "rollups", probe, "No rollup table yet (run migrate): the dashboard misses these runs"
        )

    def add_rollups(self, cursor: Any, added: Sequence[Rollup]) -> None:
        """Add ``added`` to the stored rollups, on ``cursor`` (the outcomes' transaction)."""
        if added and self.rollups_ready():
            cursor.execute(
                self.sql.add_rollups.format(rows=rows(self.sql.rollup_row, len(added))),
                [v for row in added for v in row.values()],
            )

    @retry_transient
    def write_rollups(self, added: Sequence[Rollup]) -> None:
        """Add ``added`` to the stored rollups in a transaction of their own."""
        if added:
            with self.write_transaction() as cursor:
                self.add_rollups(cursor, added)

    def sample_queues(self, now: datetime) -> int:
        """Store this minute's depth and lag of every queue with unfinished runs (several
        workers may sample one minute: the last one wins); return how many queues."""
        from ..models import QueueSample

        minute = epoch_minute(now)
        samples = [
            QueueSample(
                minute=minute,
                queue=q.queue,
                waiting=q.waiting,
                scheduled=q.scheduled,
                running=q.running,
                lag=q.oldest_wait,
            )
            for q in self.queue_depths(now)
        ]
        if samples:
            # MariaDB/MySQL take no conflict target: their upsert uses any unique key.
            target = self.connection.features.supports_update_conflicts_with_target
            QueueSample.objects.using(self.alias).bulk_create(
                samples,
                update_conflicts=True,
                unique_fields=["minute", "queue"] if target else None,
                update_fields=["waiting", "scheduled", "running", "lag"],
            )
        return len(samples)

    # -- reads ------------------------------------------------------------------------------

    def queue_depths(self, now: datetime) -> list[QueueDepth]:
        """Every queue with unfinished runs, by name: waiting (due), scheduled (not yet due),
        running, and the oldest due run's wait."""
        from django.db.models import Count, Min, Q

        waiting = (
            self.runs.filter(status__in=st.values(st.WAITING))
            .order_by()
            .values_list("queue")
            .annotate(
                due=Count("pk", filter=Q(run_after__lte=now)),
                total=Count("pk"),
                oldest=Min("run_after", filter=Q(run_after__lte=now)),
            )
        )
        running = (
            self.runs.filter(status=TaskStatus.RUNNING.value)
            .order_by()
            .values_list("queue")
            .annotate(n=Count("pk"))
        )
        depths: dict[str, dict[str, Any]] = {}
        for queue, due, total, oldest in waiting:
            depths[queue] = {
                "waiting": int(due),
                "scheduled": int(total) - int(due),
                "oldest_wait": max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            }
        for queue, n in running:
            depths.setdefault(queue, {})["running"] = int(n)
        return [QueueDepth(queue, **depths[queue]) for queue in sorted(depths)]

    def queue_depth_by_status(self, now: datetime) -> dict[tuple[str, str], int]:
        """Gauge: unfinished runs per (queue, state), state one of ``waiting`` (due, not
        started), ``scheduled`` (waiting for their time) and ``running``. Reads only
        unfinished runs, through the claim and lease indexes."""
        gauge: dict[tuple[str, str], int] = {}
        for q in self.queue_depths(now):
            gauge[(q.queue, "waiting")] = q.waiting
            gauge[(q.queue, "scheduled")] = q.scheduled
            gauge[(q.queue, "running")] = q.running
        return gauge

    def oldest_waiting_age(self, now: datetime) -> dict[str, float]:
        """Gauge: per queue with due runs, seconds the oldest due run has waited."""
        return {q.queue: q.oldest_wait for q in self.queue_depths(now) if q.waiting}

    def throughput(
        self, now: datetime, minutes: int, bucket: int
    ) -> list[tuple[int, dict[str, int]]]:
        """Finished attempts per ``bucket`` minutes over the last ``minutes``, by outcome:
        (first minute of the bucket, {outcome: count}), oldest first, empty buckets included."""
        last = epoch_minute(now)
        first = (last - minutes + 1) // bucket * bucket
        sql = self.sql.throughput.format(bucket=int(bucket))
        counts: dict[int, dict[str, int]] = {}
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [first])
            for b, outcome, runs in cursor.fetchall():
                counts.setdefault(int(b) * bucket, {})[outcome] = int(runs)
        return [(start, counts.get(start, {})) for start in range(first, last + 1, bucket)]

    def task_figures(self, now: datetime, minutes: int) -> list[TaskFigures]:
        """Per task over the last ``minutes``: final runs, failures, retries, durations."""
        tasks: dict[str, dict[str, Any]] = {}
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql.task_figures, [epoch_minute(now) - minutes + 1])
            for name, outcome, runs, seconds, *histogram in cursor.fetchall():
                task = tasks.setdefault(
                    name,
                    {"runs": 0, "failures": 0, "retries": 0, "seconds": 0.0, "histogram": None},
                )
                if outcome == "retried":
                    task["retries"] += int(runs)
                else:
                    task["runs"] += int(runs)
                if outcome in FAILURES:
                    task["failures"] += int(runs)
                task["seconds"] += float(seconds or 0)
                counts = [int(c) for c in histogram]
                old = task["histogram"]
                task["histogram"] = (
                    counts if old is None else [a + b for a, b in zip(old, counts, strict=True)]
                )
        return [TaskFigures(name, **tasks[name]) for name in sorted(tasks)]

    def last_failures(self, now: datetime, minutes: int, limit: int = 10) -> list[TaskRun]:
        """The most recent failed or discarded runs seen by the rollups in the last
        ``minutes`` (at most one per minute, task and queue), newest first."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql.last_failures, [epoch_minute(now) - minutes + 1, limit * 4])
            ids = [row[0] for row in cursor.fetchall() if row[0]]
        runs = self.runs.filter(pk__in=ids, status__in=FAILURES)
        return sorted(runs, key=lambda r: (r.finished_at is not None, r.finished_at, r.pk))[::-1][
            :limit
        ]

    def queue_history(self, now: datetime, minutes: int) -> list[Any]:
        """The queue samples of the last ``minutes``, oldest first."""
        from ..models import QueueSample

        return list(
            QueueSample.objects.using(self.alias)
            .filter(minute__gte=epoch_minute(now) - minutes + 1)
            .order_by("minute", "queue")
        )

    def prune(self, before: datetime) -> int:
        """Delete the rollups and queue samples of minutes before ``before``; return how many
        rows."""
        from ..models import QueueSample, RunRollup

        minute = epoch_minute(before)
        deleted = 0
        for model in (RunRollup, QueueSample):
            count, _ = model.objects.using(self.alias).filter(minute__lt=minute).delete()
            deleted += count
        return deleted
