"""The slot table of periodic tasks (``ScheduleSlot``): the statements on it (written whole in
``sql/``, per dialect) bound to one connection.

A scheduler fires a slot only after inserting its row; the row is unique on (schedule id, slot
time), so of any number of schedulers exactly one inserts it. PostgreSQL and SQLite skip a
taken slot with ``ON CONFLICT DO NOTHING``, MariaDB/MySQL with ``INSERT IGNORE`` (the values
are checked before, so IGNORE can only skip the duplicate). A claim made with ``fired=False``
holds a lease; when its scheduler dies before ``mark_fired()``, ``take_over()`` lets another
one fire it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .base import statements


@dataclass(frozen=True, slots=True)
class Slot:
    """A claimed slot as stored."""

    id: int
    schedule_id: str
    slot_at: datetime
    run_id: str
    fired_at: datetime | None


class SlotStore:
    """The statements on ``ScheduleSlot`` for one Django connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.alias: str = connection.alias
        self.sql = statements(connection.vendor)

    def _dt(self, value: datetime | None) -> Any:
        return None if value is None else self.connection.ops.adapt_datetimefield_value(value)

    @property
    def objects(self) -> Any:
        """``ScheduleSlot`` rows on this connection, through the ORM (reads)."""
        from ..models import ScheduleSlot

        return ScheduleSlot.objects.using(self.alias)

    @staticmethod
    def _slot(row: Any) -> Slot:
        return Slot(row.pk, row.schedule_id, row.slot_at, row.run_id, row.fired_at)

    def claim(
        self,
        schedule_id: str,
        slot_at: datetime,
        run_id: str,
        now: datetime,
        *,
        fired: bool,
        lease: float = 60.0,
        owner: str = "",
    ) -> bool:
        """Insert the slot's row; ``False`` when another scheduler holds it already.

        ``fired=True`` records the hand-over as done (the caller's transaction also holds the
        run); ``fired=False`` leases the slot for ``lease`` seconds until ``mark_fired()``.
        """
        params = [
            schedule_id,
            self._dt(slot_at),
            run_id,
            self._dt(now),
            self._dt(now if fired else None),
            None if fired else self._dt(now + timedelta(seconds=lease)),
            owner[:255],
        ]
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql.slot_claim, params)
            return int(cursor.rowcount) == 1

    def mark_fired(self, schedule_id: str, slot_at: datetime, now: datetime) -> None:
        """Record that the slot's run was handed to the backend."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                self.sql.slot_mark_fired, [self._dt(now), schedule_id, self._dt(slot_at)]
            )

    def unfired(self, now: datetime) -> list[Slot]:
        """Claims whose scheduler did not hand the run over and whose lease has run out."""
        rows = self.objects.filter(fired_at__isnull=True, lease_until__lt=now).order_by("slot_at")
        return [self._slot(row) for row in rows]

    def take_over(self, slot: Slot, now: datetime, lease: float, owner: str) -> bool:
        """Lease an abandoned claim to this scheduler; ``False`` when another one was faster."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                self.sql.slot_take_over,
                [self._dt(now + timedelta(seconds=lease)), owner[:255], slot.id, self._dt(now)],
            )
            return int(cursor.rowcount) == 1

    def latest(self, schedule_ids: Iterable[str] | None = None) -> dict[str, Slot]:
        """The newest claimed slot of each schedule (of ``schedule_ids``, or all)."""
        from django.db.models import Max, Q

        newest = self.objects.order_by().values("schedule_id").annotate(newest=Max("slot_at"))
        wanted = None if schedule_ids is None else set(schedule_ids)
        pairs = [
            (row["schedule_id"], row["newest"])
            for row in newest
            if wanted is None or row["schedule_id"] in wanted
        ]
        found: dict[str, Slot] = {}
        for start in range(0, len(pairs), 500):
            match = Q()
            for schedule_id, slot_at in pairs[start : start + 500]:
                match |= Q(schedule_id=schedule_id, slot_at=slot_at)
            for row in self.objects.filter(match):
                found[row.schedule_id] = self._slot(row)
        return found

    def slots(self, schedule_id: str) -> list[Slot]:
        """Every stored slot of ``schedule_id``, oldest first."""
        rows = self.objects.filter(schedule_id=schedule_id).order_by("slot_at")
        return [self._slot(row) for row in rows]

    def prune(self, schedule_id: str, before: datetime) -> int:
        """Forget fired slots of ``schedule_id`` older than ``before`` (pass a time no later
        than its newest slot, so the newest is kept for catch-up)."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql.slot_prune, [schedule_id, self._dt(before)])
            return int(cursor.rowcount)


def using(database: str = "default") -> SlotStore:
    """The slot store on the connection alias ``database`` (this thread's)."""
    from django.db import connections

    return SlotStore(connections[database])


__all__: Sequence[str] = ["Slot", "SlotStore", "using"]
