"""What the dashboard, ``tasks_status`` and metrics read: queue depths, rollups, workers.

Every read here is cheap with a big history: queue depths read only unfinished runs (the
claim and lease indexes), throughput and per-task figures read the per-minute rollups
(``rollups.py``), never the finished runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..core.status import TaskStatus
from . import statuses as st
from .rollups import ADDED, COLUMNS, FAILURES, HISTOGRAM, KEY, Rollup, epoch_minute
from .transient import retry_transient

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from ..models import TaskRun, WorkerHeartbeat

logger = logging.getLogger("django_generic_tasks.worker")
_READY: set[tuple[Any, ...]] = set()
"""(alias, database name) pairs whose rollup table is known to exist (and, with "history",
whose TaskRun.history column is)."""


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


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker says about itself in its heartbeat."""

    worker_id: str
    host: str
    pid: int
    queues: Sequence[str]
    concurrency: int
    runs_done: int
    started_at: datetime
    exclude_queues: Sequence[str] = ()


EXCLUDED = "!"
"""Prefix of an excluded queue in a heartbeat's ``queues`` (``tasks_worker --exclude-queue``)."""


def queues_field(queues: Sequence[str], exclude: Sequence[str] = ()) -> str:
    """A worker's queues as its heartbeat stores them: names, then ``!name`` per exclusion;
    empty: every queue."""
    return ",".join([*queues, *(EXCLUDED + q for q in exclude)])


def serves(field: str, queue: str) -> bool:
    """Whether a worker whose heartbeat says ``field`` (``queues_field()``) takes ``queue``."""
    names = [name for name in field.split(",") if name]
    if EXCLUDED + queue in names:
        return False
    included = [name for name in names if not name.startswith(EXCLUDED)]
    return not included or queue in included


def unserved(depths: Sequence[QueueDepth], workers: Sequence[Any]) -> list[QueueDepth]:
    """The queues with due runs waiting that no live worker (``queues`` field) serves."""
    return [
        depth
        for depth in depths
        if depth.waiting and not any(serves(worker.queues, depth.queue) for worker in workers)
    ]


class Observations:
    """The store's reads for observability, and the writes of rollups and heartbeats.

    Mixed into ``RunStore``; dialects override ``_div`` and ``rollup_upsert_sql``.
    """

    connection: Any
    alias: str

    @property
    def objects(self) -> QuerySet[TaskRun]:
        """``TaskRun`` rows on this connection (``RunStore`` defines it)."""
        raise NotImplementedError

    @cached_property
    def rollup_table(self) -> str:
        """The quoted rollup table name."""
        from ..models import RunRollup

        return str(self.connection.ops.quote_name(RunRollup._meta.db_table))

    # -- writes (the worker) ----------------------------------------------------------------

    def rollup_upsert_sql(self, rows: int) -> str:
        """An upsert of ``rows`` rollup rows that adds to the stored counts (SQLite and
        PostgreSQL syntax)."""
        one = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
        updates = ", ".join(f"{c} = {self.rollup_table}.{c} + excluded.{c}" for c in ADDED)
        return (
            f"INSERT INTO {self.rollup_table} ({', '.join(COLUMNS)}) "
            f"VALUES {', '.join([one] * rows)} ON CONFLICT ({', '.join(KEY)}) "
            f"DO UPDATE SET {updates}, last_run_id = excluded.last_run_id"
        )

    def rollups_ready(self) -> bool:
        """Whether the rollup table exists (migration 0004 applied). Until it does, outcomes
        are written without rollups, so a worker deployed before ``migrate`` keeps working."""
        key = (self.alias, self.connection.settings_dict.get("NAME"))
        if key in _READY:
            return True
        from ..models import RunRollup

        with self.connection.cursor() as cursor:
            names = self.connection.introspection.table_names(cursor)
        if RunRollup._meta.db_table in names:
            _READY.add(key)
            return True
        logger.warning("No rollup table yet (run migrate): the dashboard misses these runs")
        return False

    def add_rollups(self, cursor: Any, rows: Sequence[Rollup]) -> None:
        """Add ``rows`` to the stored rollups, on ``cursor`` (the outcomes' transaction)."""
        if rows and self.rollups_ready():
            cursor.execute(
                self.rollup_upsert_sql(len(rows)), [v for row in rows for v in row.values()]
            )

    @retry_transient
    def write_rollups(self, rows: Sequence[Rollup]) -> None:
        """Add ``rows`` to the stored rollups in a transaction of their own."""
        if rows:
            with self.write_transaction() as cursor:
                self.add_rollups(cursor, rows)

    def write_transaction(self) -> Any:
        """A cursor inside a write transaction (``RunStore`` defines it)."""
        raise NotImplementedError

    @retry_transient
    def beat(self, worker: WorkerInfo, lease: float, now: datetime) -> None:
        """Record that ``worker`` is alive until ``now + lease`` (insert or refresh its row)."""
        from ..models import WorkerHeartbeat

        fields = {
            "host": worker.host[:255],
            "pid": worker.pid,
            "queues": queues_field(worker.queues, worker.exclude_queues)[:1000],
            "concurrency": worker.concurrency,
            "runs_done": worker.runs_done,
            "started_at": worker.started_at,
            "last_beat": now,
            "expires_at": now + timedelta(seconds=lease),
        }
        beats = WorkerHeartbeat.objects.using(self.alias)
        if not beats.filter(pk=worker.worker_id).update(**fields):
            beats.create(worker_id=worker.worker_id, **fields)

    @retry_transient
    def forget_worker(self, worker_id: str) -> None:
        """Remove the heartbeat of a worker that stopped cleanly."""
        from ..models import WorkerHeartbeat

        WorkerHeartbeat.objects.using(self.alias).filter(pk=worker_id).delete()

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
            self.objects.filter(status__in=st.values(st.WAITING))
            .order_by()
            .values_list("queue")
            .annotate(
                due=Count("pk", filter=Q(run_after__lte=now)),
                total=Count("pk"),
                oldest=Min("run_after", filter=Q(run_after__lte=now)),
            )
        )
        running = (
            self.objects.filter(status=TaskStatus.RUNNING.value)
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

    def _div(self, expression: str, divisor: int) -> str:
        """Integer division in SQL."""
        return f"({expression}) / {int(divisor)}"

    def throughput(
        self, now: datetime, minutes: int, bucket: int
    ) -> list[tuple[int, dict[str, int]]]:
        """Finished attempts per ``bucket`` minutes over the last ``minutes``, by outcome:
        (first minute of the bucket, {outcome: count}), oldest first, empty buckets included."""
        last = epoch_minute(now)
        first = (last - minutes + 1) // bucket * bucket
        sql = (
            f"SELECT {self._div('minute', bucket)} AS b, outcome, SUM(runs) "
            f"FROM {self.rollup_table} WHERE minute >= %s GROUP BY b, outcome"
        )
        counts: dict[int, dict[str, int]] = {}
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [first])
            for b, outcome, runs in cursor.fetchall():
                counts.setdefault(int(b) * bucket, {})[outcome] = int(runs)
        return [(start, counts.get(start, {})) for start in range(first, last + 1, bucket)]

    def task_figures(self, now: datetime, minutes: int) -> list[TaskFigures]:
        """Per task over the last ``minutes``: final runs, failures, retries, durations."""
        sums = ", ".join(f"SUM({c})" for c in ("runs", "seconds", *HISTOGRAM))
        sql = (
            f"SELECT task_name, outcome, {sums} FROM {self.rollup_table} "
            "WHERE minute >= %s GROUP BY task_name, outcome"
        )
        tasks: dict[str, dict[str, Any]] = {}
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [epoch_minute(now) - minutes + 1])
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
        from ..models import TaskRun

        marks = ", ".join(["%s"] * len(FAILURES))
        sql = (
            f"SELECT last_run_id FROM {self.rollup_table} WHERE minute >= %s "
            f"AND outcome IN ({marks}) ORDER BY minute DESC LIMIT %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [epoch_minute(now) - minutes + 1, *FAILURES, limit * 4])
            ids = [row[0] for row in cursor.fetchall() if row[0]]
        runs = TaskRun.objects.using(self.alias).filter(pk__in=ids, status__in=FAILURES)
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

    def live_workers(self, now: datetime) -> list[WorkerHeartbeat]:
        """Workers whose last heartbeat has not expired, oldest first."""
        from ..models import WorkerHeartbeat

        return list(
            WorkerHeartbeat.objects.using(self.alias)
            .filter(expires_at__gt=now)
            .order_by("started_at", "worker_id")
        )

    def prune_observations(self, before: datetime) -> int:
        """Delete rollups and queue samples of minutes before ``before``, and heartbeats of
        workers that expired before it; return how many rows."""
        from ..models import QueueSample, RunRollup, WorkerHeartbeat

        minute = epoch_minute(before)
        deleted = 0
        for model, lookup in (
            (RunRollup, {"minute__lt": minute}),
            (QueueSample, {"minute__lt": minute}),
            (WorkerHeartbeat, {"expires_at__lt": before}),
        ):
            count, _ = model.objects.using(self.alias).filter(**lookup).delete()
            deleted += count
        return deleted
