"""Firing one slot: claim it in the slot table, then hand its run to the backend.

On a backend that stores runs in the slot table's database (``run_database``:
``DatabaseBackend``) the claim and the run's row commit in one transaction: both or neither.
On other backends the claim commits first with a lease, the run is handed over, then the claim
is marked fired; a scheduler that dies in between leaves a leased claim that another scheduler
fires again once the lease runs out (with the same run id, and the same ``key`` where the
backend deduplicates), so nothing is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.enqueue import EnqueueRequest
from ..core.status import new_run_id

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..core.schedule import ScheduleEntry

logger = logging.getLogger("django_generic_tasks.schedules")
LEASE = 60.0
"""Seconds a claim made on a non-transactional backend waits for its hand-over."""


@dataclass(frozen=True, slots=True)
class Fired:
    """A slot this scheduler fired."""

    schedule_id: str
    slot_at: datetime
    run_id: str


def request_for(
    entry: ScheduleEntry, run_id: str, backend: Backend, *, keyed: bool = False
) -> EnqueueRequest:
    """The run a slot of ``entry`` starts (the task's options, the schedule's overrides);
    ``keyed``: with a key derived from the run id, where the backend deduplicates keys."""
    from ..core.registry import registry

    task = registry.get(entry.task_name)
    schedule = entry.schedule
    key = None
    if keyed and backend.supports_key:
        key = f"schedule:{run_id}"  # a re-fired claim (same run id) is deduplicated
    return EnqueueRequest(
        run_id,
        task.name,
        entry.params_json,
        schedule.queue or task.queue,
        task.priority if schedule.priority is None else schedule.priority,
        None,
        key,
        task.max_attempts,
        task.timeout,
    )


def transactional(backend: Backend, database: str) -> bool:
    """Whether ``backend`` writes runs in ``database``, so claim and run can commit together."""
    return backend.run_database == database


def fire(
    entry: ScheduleEntry,
    slot_at: datetime,
    backend: Backend,
    database: str,
    owner: str = "",
) -> Fired | None:
    """Claim ``slot_at`` of ``entry`` and start its run; ``None`` when another scheduler has it."""
    from django.db import transaction

    from ..core.dispatch import submit
    from ..store.slots import using

    run_id = new_run_id()
    slots = using(database)
    now = datetime.now(UTC)
    if transactional(backend, database):
        request = request_for(entry, run_id, backend)
        with transaction.atomic(using=database):
            if not slots.claim(entry.id, slot_at, run_id, now, fired=True, owner=owner):
                return None
            submit(backend, request, on_commit=False)
    else:
        request = request_for(entry, run_id, backend, keyed=True)
        with transaction.atomic(using=database):
            claimed = slots.claim(
                entry.id, slot_at, run_id, now, fired=False, lease=LEASE, owner=owner
            )
        if not claimed:
            return None
        submit(backend, request, on_commit=False)
        slots.mark_fired(entry.id, slot_at, datetime.now(UTC))
    return announce(entry, slot_at, run_id)


def refire_abandoned(
    entries: dict[str, ScheduleEntry], backend: Backend, database: str, owner: str = ""
) -> list[Fired]:
    """Fire claims whose scheduler died before handing their run over (non-transactional
    backends only: on ``DatabaseBackend`` a claim never exists without its run)."""
    from ..core.dispatch import submit
    from ..store.slots import using

    if transactional(backend, database):
        return []
    slots = using(database)
    fired: list[Fired] = []
    for slot in slots.unfired(datetime.now(UTC)):
        entry = entries.get(slot.schedule_id)
        if entry is None or not slots.take_over(slot, datetime.now(UTC), LEASE, owner):
            continue
        submit(backend, request_for(entry, slot.run_id, backend, keyed=True), on_commit=False)
        slots.mark_fired(slot.schedule_id, slot.slot_at, datetime.now(UTC))
        fired.append(announce(entry, slot.slot_at, slot.run_id))
    return fired


def announce(entry: ScheduleEntry, slot_at: datetime, run_id: str) -> Fired:
    """Log the fired slot and send ``schedule_fired``."""
    from ..signals import schedule_fired

    logger.info("Schedule %s fired slot %s: run %s", entry.id, slot_at.isoformat(), run_id)
    if schedule_fired.receivers:
        schedule_fired.send(
            sender=None, schedule_id=entry.id, slot_at=slot_at, run_id=run_id, entry=entry
        )
    return Fired(entry.id, slot_at, run_id)


def run_now(entry: ScheduleEntry, backend: Backend | None = None) -> Any:
    """Start ``entry``'s task with its params now, outside any slot (the admin's *run now*)."""
    from ..conf import get_backend
    from ..core.dispatch import submit

    chosen = backend or get_backend()
    request = request_for(entry, new_run_id(), chosen)
    handle = submit(chosen, request)
    logger.info("Schedule %s run now: run %s", entry.id, request.run_id)
    return handle


def check_backend(entries: dict[str, ScheduleEntry], backend: Backend) -> None:
    """Raise ``UnsupportedOptionError`` when a schedule asks what ``backend`` cannot do."""
    from ..core.dispatch import check_capabilities
    from ..exceptions import UnsupportedOptionError

    for entry in entries.values():
        request = request_for(entry, new_run_id(), backend)
        try:
            check_capabilities(backend, request)
        except UnsupportedOptionError as exc:
            raise UnsupportedOptionError(f"Schedule {entry.id!r}: {exc}") from None
