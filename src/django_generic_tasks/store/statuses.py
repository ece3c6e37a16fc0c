"""The status sets of a stored run: the one definition the model, the store and the admin use."""

from __future__ import annotations

from datetime import datetime

from ..core.status import TaskStatus

UNFINISHED = (TaskStatus.SCHEDULED, TaskStatus.READY, TaskStatus.RUNNING)
"""Statuses of runs that are not over yet (a task's ``key`` is unique among these)."""
WAITING = (TaskStatus.SCHEDULED, TaskStatus.READY)
"""Statuses of runs a worker may claim once their ``run_after`` has passed."""
FINISHED = tuple(s for s in TaskStatus if s.is_finished)
"""Final statuses: the runs ``tasks_prune`` may delete."""
RETRYABLE = (TaskStatus.FAILED, TaskStatus.DISCARDED, TaskStatus.CANCELLED)
"""Final statuses an operator may retry from the admin."""
STORED = tuple(s for s in TaskStatus if s is not TaskStatus.PENDING)
"""Every status a stored run can have (``pending`` lives only in the caller's transaction)."""


def values(statuses: tuple[TaskStatus, ...]) -> list[str]:
    """The stored values of ``statuses``."""
    return [s.value for s in statuses]


def sql_list(statuses: tuple[TaskStatus, ...]) -> str:
    """``statuses`` as an SQL list literal, e.g. ``('scheduled', 'ready')``.

    Written into the statement text (the values are this module's constants, never input) so
    the planner matches it to the partial indexes defined with the same sets.
    """
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


def waiting_status(run_after: datetime | None, now: datetime) -> TaskStatus:
    """The one rule for a waiting run: ``scheduled`` while ``run_after`` is ahead, else
    ``ready``."""
    if run_after is not None and run_after > now:
        return TaskStatus.SCHEDULED
    return TaskStatus.READY
