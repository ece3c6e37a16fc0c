"""``WorkerRegistry``: the workers' heartbeat rows (``WorkerHeartbeat``): who is alive, what
it serves, how many runs it has done; and which queues no live worker serves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .base import StorePart
from .transient import retry_transient

if TYPE_CHECKING:
    from ..models import WorkerHeartbeat
    from .observe import QueueDepth


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


class WorkerRegistry(StorePart):
    """The heartbeat rows on one connection."""

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
    def forget(self, worker_id: str) -> None:
        """Remove the heartbeat of a worker that stopped cleanly."""
        from ..models import WorkerHeartbeat

        WorkerHeartbeat.objects.using(self.alias).filter(pk=worker_id).delete()

    def live(self, now: datetime) -> list[WorkerHeartbeat]:
        """Workers whose last heartbeat has not expired, oldest first."""
        from ..models import WorkerHeartbeat

        return list(
            WorkerHeartbeat.objects.using(self.alias)
            .filter(expires_at__gt=now)
            .order_by("started_at", "worker_id")
        )

    def prune(self, before: datetime) -> int:
        """Delete the heartbeats of workers that expired before ``before``; return how many."""
        from ..models import WorkerHeartbeat

        count, _ = WorkerHeartbeat.objects.using(self.alias).filter(expires_at__lt=before).delete()
        return int(count)
