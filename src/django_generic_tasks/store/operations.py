"""``RunOperations``: what operators do to runs (the admin's actions, ``tasks_prune``,
``handle.cancel()``): retry, cancel, run now, prune, count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.status import TaskStatus
from . import statuses as st
from .base import StorePart

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from ..models import TaskRun
    from .queue import RunQueue


class RunOperations(StorePart):
    """The operators' statements on ``TaskRun`` (through the ORM: none is on a hot path)."""

    def __init__(self, connection: Any, queue: RunQueue) -> None:
        super().__init__(connection)
        self.queue = queue
        """Which unfinished run holds a key (a retry must not take it)."""

    def retry(
        self, runs: QuerySet[TaskRun], now: datetime, fresh_budget: bool = False
    ) -> tuple[int, list[str], int]:
        """Make failed, discarded or cancelled runs ready again.

        By default each gets exactly one more attempt (``max_attempts`` 8 -> 9 after eight
        attempts); with ``fresh_budget`` the attempt counter restarts at 0 and the run gets
        its task's whole ``max_attempts`` budget again (the run's own when the task is not
        registered here). Returns (retried, keys of runs not retried because another
        unfinished run of the same task holds the key, runs skipped because they are not
        retryable).
        """
        from django.db import IntegrityError, transaction

        retryable = st.values(st.RETRYABLE)
        skipped = runs.exclude(status__in=retryable).count()
        retried, blocked = 0, []
        for run in runs.filter(status__in=retryable):
            if run.key is not None and self.queue.open_run(run.task_name, run.key) is not None:
                blocked.append(run.key)
                continue
            if fresh_budget:
                budget = {"attempt": 0, "max_attempts": _task_budget(run)}
            else:
                budget = {"max_attempts": max(run.max_attempts, run.attempt + 1)}
            try:
                with transaction.atomic(using=self.alias):
                    self.runs.filter(pk=run.pk, status__in=retryable).update(
                        status=TaskStatus.READY.value,
                        run_after=now,
                        finished_at=None,
                        result=None,
                        cancel_requested_at=None,  # a retry by hand is not cancelled again
                        progress=None,
                        **budget,
                    )
                retried += 1
            except IntegrityError:
                blocked.append(run.key or str(run.pk))
        return retried, blocked, skipped

    def cancel(self, runs: QuerySet[TaskRun], now: datetime) -> int:
        """Cancel waiting runs at once and ask running ones to stop (``Task.check_cancelled()``:
        their worker hears it at once on PostgreSQL, within a heartbeat elsewhere); return
        how many. A run asked to stop is never claimed again: if its worker gives it back or
        is lost, or its attempt ends in a retry, it ends ``cancelled``."""
        from django.db import transaction

        from .schema import db_id

        with transaction.atomic(using=self.alias):  # with what their workflows do next
            pks = list(runs.filter(status__in=st.values(st.WAITING)).values_list("pk", flat=True))
            waiting = (
                self.runs.filter(pk__in=pks, status__in=st.values(st.WAITING)).update(
                    status=TaskStatus.CANCELLED.value, finished_at=now, lease_expires_at=None
                )
                if pks
                else 0
            )
            if waiting:
                with self.connection.cursor() as cursor:
                    self.queue.runs_ended(cursor, [db_id(self.connection, str(pk)) for pk in pks])
        asked = runs.filter(status=TaskStatus.RUNNING.value, cancel_requested_at=None)
        ids = list(asked.values_list("pk", flat=True))
        running = (
            self.runs.filter(
                pk__in=ids, status=TaskStatus.RUNNING.value, cancel_requested_at=None
            ).update(cancel_requested_at=now)
            if ids
            else 0
        )
        if running:
            self.announce_cancel(ids)
        return waiting + running

    def announce_cancel(self, ids: Sequence[object]) -> None:
        """Tell the workers running ``ids`` they were asked to stop (PostgreSQL ``NOTIFY``, sent
        when the cancel commits; elsewhere the heartbeat reads it)."""
        if self.sql.announce_cancel is not None:
            from .listen import CANCEL_CHANNEL

            with self.connection.cursor() as cursor:
                cursor.execute(self.sql.announce_cancel, [CANCEL_CHANNEL, [str(pk) for pk in ids]])

    def make_due(self, runs: QuerySet[TaskRun], now: datetime) -> int:
        """Make waiting runs due at ``now``, ahead of their schedule; return how many."""
        return runs.filter(status__in=st.values(st.WAITING)).update(
            status=TaskStatus.READY.value, run_after=now
        )

    def prune(
        self,
        before: datetime,
        statuses: Sequence[TaskStatus] = st.FINISHED,
        batch: int = 10_000,
        dry_run: bool = False,
    ) -> int:
        """Delete finished runs (of ``statuses``) finished before ``before``, ``batch`` rows per
        DELETE; return how many (with ``dry_run``, how many would go)."""
        unknown = [s for s in statuses if s not in st.FINISHED]
        if unknown:
            raise ValueError(f"Only finished runs can be pruned, not {unknown}.")
        runs = self.runs.filter(status__in=[s.value for s in statuses], finished_at__lt=before)
        if dry_run:
            return runs.count()
        deleted = 0
        while ids := list(runs.values_list("pk", flat=True)[:batch]):
            count, _ = self.runs.filter(pk__in=ids).delete()
            deleted += count
        self.queue.workflows.prune(before, batch)
        return deleted

    def stats(self) -> dict[TaskStatus, int]:
        """How many runs are in each status (statuses with none are left out)."""
        from django.db.models import Count

        rows = self.runs.order_by().values_list("status").annotate(n=Count("pk"))
        return {TaskStatus(status): int(n) for status, n in rows}


def _task_budget(run: TaskRun) -> int:
    """The ``max_attempts`` of ``run``'s task as registered now, else the run's own."""
    from ..core.registry import registry

    if run.task_name in registry:
        return int(registry.get(run.task_name).max_attempts)
    return int(run.max_attempts)
