"""Per-minute rollups of finished attempts: what the worker adds with each batch of outcomes.

A batch of outcomes becomes a handful of rollup rows (one per minute, task, queue and outcome),
added to the stored counts in the same transaction (PostgreSQL: the same statement) as the
outcomes themselves, so the dashboard reads a few thousand rows instead of the runs table.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.status import TaskStatus

DURATION_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0)
"""Upper bounds (seconds) of the duration histogram buckets ``d0`` ... ``d10`` of a rollup
row; ``d11`` counts longer attempts."""

HISTOGRAM = tuple(f"d{i}" for i in range(len(DURATION_BOUNDS) + 1))
"""The duration histogram's columns, shortest bucket first."""
KEY = ("minute", "task_name", "queue", "outcome")
"""The columns that identify a rollup row (its unique constraint)."""
ADDED = ("runs", "seconds", *HISTOGRAM)
"""The columns a new batch adds to."""
COLUMNS = (*KEY, *ADDED, "last_run_id")
"""Every column an upsert writes, in the order ``Rollup.values()`` gives them."""
RETRIED = "retried"
"""The outcome of an attempt that will be retried."""
FAILURES = (TaskStatus.FAILED.value, TaskStatus.DISCARDED.value)
"""Outcomes that count as a run's failure."""
OUTCOMES = (
    TaskStatus.SUCCEEDED.value,
    TaskStatus.FAILED.value,
    TaskStatus.DISCARDED.value,
    RETRIED,
    TaskStatus.CANCELLED.value,
)
"""Every outcome a rollup row can have, in the dashboard's stacking order."""


_WILL_RETRY = frozenset((TaskStatus.SCHEDULED, TaskStatus.READY))


def epoch_minute(at: datetime) -> int:
    """``at`` as whole minutes since the Unix epoch."""
    return int(at.timestamp() // 60)


def duration_bucket(seconds: float) -> int:
    """The histogram bucket (index into ``HISTOGRAM``) of an attempt that took ``seconds``."""
    return bisect_left(DURATION_BOUNDS, seconds)


@dataclass(slots=True)
class Rollup:
    """One rollup row's key and the counts a batch adds to it."""

    minute: int
    task_name: str
    queue: str
    outcome: str
    runs: int = 0
    seconds: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * len(HISTOGRAM))
    last_run_id: str = ""

    def values(self) -> list[Any]:
        """The row's values in ``COLUMNS`` order."""
        return [
            self.minute,
            self.task_name,
            self.queue,
            self.outcome,
            self.runs,
            self.seconds,
            *self.histogram,
            self.last_run_id,
        ]


def rollups(items: Sequence[Any]) -> list[Rollup]:
    """The rollup rows of a batch of ``Finished`` items, sorted by key (so concurrent
    workers lock shared rows in one order and never deadlock)."""
    groups: dict[tuple[datetime, str, str, TaskStatus], list[Any]] = {}
    for item in items:  # the hot part: one dict lookup per item
        run = item.run
        key = (item.at, run.task_name, run.queue, item.outcome.run_status)
        group = groups.get(key)
        if group is None:
            groups[key] = [item]
        else:
            group.append(item)
    rows: dict[tuple[int, str, str, str], Rollup] = {}
    minutes: dict[datetime, int] = {}
    for (at, task_name, queue, status), group in groups.items():
        minute = minutes.get(at)
        if minute is None:
            minute = minutes[at] = epoch_minute(at)
        name = RETRIED if status in _WILL_RETRY else status.value
        row = rows.get((minute, task_name, queue, name))
        if row is None:
            row = rows[(minute, task_name, queue, name)] = Rollup(minute, task_name, queue, name)
        histogram = row.histogram
        for item in group:
            histogram[bisect_left(DURATION_BOUNDS, item.seconds)] += 1
        row.runs += len(group)
        row.seconds += sum(item.seconds for item in group)
        # Run ids sort by start time: the highest is the latest run.
        row.last_run_id = max(row.last_run_id, *(item.run.id for item in group))
    return [rows[key] for key in sorted(rows)]


def merge(*batches: Sequence[Rollup]) -> list[Rollup]:
    """The rows of several batches added up, key by key, sorted by key (new objects: the
    batches are left as they were)."""
    rows: dict[tuple[int, str, str, str], Rollup] = {}
    for batch in batches:
        for row in batch:
            key = (row.minute, row.task_name, row.queue, row.outcome)
            into = rows.get(key)
            if into is None:
                rows[key] = Rollup(
                    *key, row.runs, row.seconds, list(row.histogram), row.last_run_id
                )
                continue
            into.runs += row.runs
            into.seconds += row.seconds
            into.histogram = [a + b for a, b in zip(into.histogram, row.histogram, strict=True)]
            into.last_run_id = max(into.last_run_id, row.last_run_id)
    return [rows[key] for key in sorted(rows)]


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """The upper bound (seconds) of the bucket holding the ``fraction`` percentile; ``inf``
    past the last bound; ``None`` with no attempts."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return DURATION_BOUNDS[index] if index < len(DURATION_BOUNDS) else float("inf")
    return float("inf")
