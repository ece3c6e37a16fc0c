"""Slot times: when a cron expression or an interval fires, as UTC instants.

Cron expressions are evaluated by ``cronsim`` in the schedule's zone, which handles daylight
saving time like Debian's cron:
- a time that does not exist (02:30 on the spring-forward day in Europe) fires once, at the
  first instant after the gap (03:00 local);
- a time that happens twice (02:30 on the fall-back day) fires once, at its first occurrence;
- expressions with a wildcard hour (``0 * * * *``) fire every real hour, so the repeated hour
  fires twice and the skipped hour not at all.

``every`` intervals are counted from the Unix epoch in UTC, so every scheduler process agrees
on the slots without talking to the others, and they ignore the zone and DST.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Timing:
    """The slot times of one schedule (see ``cron_timing()`` and ``every_timing()``)."""

    cron: str | None
    zone: ZoneInfo | None
    every: timedelta | None

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment`` (UTC)."""
        if self.every is not None:
            steps = (moment - EPOCH) // self.every + 1
            return EPOCH + steps * self.every
        return next(self._cron(moment, reverse=False))

    def back_from(self, moment: datetime) -> Iterator[datetime]:
        """Slots at or before ``moment``, newest first (UTC)."""
        if self.every is not None:
            slot = EPOCH + ((moment - EPOCH) // self.every) * self.every
            while True:
                yield slot
                slot -= self.every
        # cronsim's reverse iteration starts strictly before its start: nudge to include it
        yield from self._cron(moment + timedelta(microseconds=1), reverse=True)

    def _cron(self, moment: datetime, *, reverse: bool) -> Iterator[datetime]:
        from cronsim import CronSim

        assert self.cron is not None
        assert self.zone is not None
        local = moment.astimezone(self.zone)
        for slot in CronSim(self.cron, local, reverse=reverse):
            yield slot.astimezone(UTC)

    def slots_between(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Slots in ``(after, until]``, newest first, at most ``limit``."""
        found: list[datetime] = []
        for slot in self.back_from(until):
            if slot <= after or len(found) >= limit:
                break
            found.append(slot)
        return found


def cron_timing(expression: str, zone: ZoneInfo) -> Timing:
    """The timing of a cron ``expression`` read in ``zone``; ``ValueError`` when invalid."""
    from cronsim import CronSim, CronSimError

    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("empty expression")
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=zone))
    except CronSimError as exc:
        raise ValueError(str(exc)) from None
    timing = Timing(expression, zone, None)
    try:
        timing.next_after(datetime.now(UTC))
    except StopIteration:
        raise ValueError("it never fires") from None
    return timing


def every_timing(every: timedelta) -> Timing:
    """The timing of an interval of ``every`` (at least a second), aligned to the epoch."""
    return Timing(None, None, every)
