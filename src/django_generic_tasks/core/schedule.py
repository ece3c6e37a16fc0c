"""``Schedule``: when a task runs by itself, and with which params; validated against a task.

A ``Schedule`` is a plain value until it meets its task: ``resolve()`` (called when the task
class is defined, or by the system check for ``TASKS_SCHEDULES``) checks everything and returns
a ``ScheduleEntry``, the form the scheduler, the admin and the Cloud Scheduler sync use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import TaskDefinitionError
from .schedule_timing import Timing, cron_timing, every_timing

if TYPE_CHECKING:
    from .task import Task

CatchUp = Literal["latest", "all", "none"]
CATCH_UP_POLICIES: tuple[str, ...] = ("latest", "all", "none")
MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class Schedule:
    """Run the task by itself: on a ``cron`` expression or ``every`` interval, with ``params``.

    Exactly one of ``cron`` (5 fields; or 6 with a seconds field first,
    as cronsim reads it) and
    ``every`` (a ``timedelta`` of at least one second). ``tz`` is the IANA zone the cron
    expression is read in. ``name`` gives the schedule a stable id (``<task name>:<name>``);
    without it the id is ``<task name>:<position in the list>``. ``catch_up`` says what to do
    with slots missed while no scheduler ran: ``"latest"`` fires the most recent one,
    ``"all"`` fires each (at most ``CATCH_UP_LIMIT``), ``"none"`` fires none. ``queue`` and
    ``priority`` override the task's own.
    """

    cron: str | None = None
    every: timedelta | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    tz: str = "UTC"
    name: str | None = None
    catch_up: CatchUp = "latest"
    queue: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class ScheduleEntry:
    """A validated schedule bound to its task: what the scheduler fires."""

    id: str
    task_name: str
    schedule: Schedule
    params_json: str
    timing: Timing
    source: str = "class"
    """``"class"`` (a task's ``schedules``) or ``"settings"`` (``TASKS_SCHEDULES``)."""

    @property
    def describe(self) -> str:
        """The cron expression or interval, for people."""
        s = self.schedule
        return f"cron {s.cron!r}" if s.cron is not None else f"every {s.every}"


def resolve(task: type[Task[Any]], schedule: object, schedule_id: str) -> ScheduleEntry:
    """Validate ``schedule`` for ``task``; ``TaskDefinitionError`` naming both when invalid."""
    where = f"{task.__module__}.{task.__qualname__} schedule {schedule_id!r}"

    def fail(problem: str) -> TaskDefinitionError:
        return TaskDefinitionError(f"{where}: {problem}")

    if not isinstance(schedule, Schedule):
        raise fail(f"must be a tasks.Schedule, not {type(schedule).__name__}")
    if len(schedule_id) > MAX_ID_LENGTH:
        raise fail(f"the id is longer than {MAX_ID_LENGTH} characters")
    if (schedule.cron is None) == (schedule.every is None):
        raise fail("give exactly one of cron= and every=")
    try:
        zone = ZoneInfo(schedule.tz) if isinstance(schedule.tz, str) and schedule.tz else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is None:
        raise fail(f"unknown time zone {schedule.tz!r} (use an IANA name such as 'Europe/Berlin')")
    if schedule.catch_up not in CATCH_UP_POLICIES:
        raise fail(f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}")
    if schedule.queue is not None and (not isinstance(schedule.queue, str) or not schedule.queue):
        raise fail("queue must be a non-empty string or None")
    if schedule.priority is not None and (
        type(schedule.priority) is not int or not -100 <= schedule.priority <= 100
    ):
        raise fail("priority must be an integer from -100 to 100 or None")
    if schedule.every is not None:
        if not isinstance(schedule.every, timedelta) or schedule.every < timedelta(seconds=1):
            raise fail("every= must be a datetime.timedelta of at least 1 second")
        if schedule.every % timedelta(seconds=1):
            raise fail("every= must be a whole number of seconds")
        timing = every_timing(schedule.every)
    else:
        try:
            timing = cron_timing(str(schedule.cron), zone)
        except ValueError as exc:
            raise fail(f"invalid cron expression {schedule.cron!r}: {exc}") from None
    from pydantic import ValidationError

    from .params import dump_params, validate_params

    try:
        params = validate_params(task.params_model, schedule.params)
    except (ValidationError, TypeError) as exc:
        raise fail(f"invalid params: {exc}") from None
    return ScheduleEntry(schedule_id, task.name, schedule, dump_params(params), timing)


def resolve_all(task: type[Task[Any]], schedules: object) -> tuple[ScheduleEntry, ...]:
    """Every schedule of ``task`` (its ``schedules`` list) validated, ids unique."""
    if not isinstance(schedules, list | tuple):
        raise TaskDefinitionError(
            f"{task.__module__}.{task.__qualname__}.schedules must be a list of tasks.Schedule."
        )
    entries: list[ScheduleEntry] = []
    for position, schedule in enumerate(schedules):
        label = getattr(schedule, "name", None)
        if label is not None and (not isinstance(label, str) or not label or ":" in label):
            raise TaskDefinitionError(
                f"{task.__module__}.{task.__qualname__} schedule {position}: name must be a "
                f"non-empty string without ':' (got {label!r})."
            )
        entry = resolve(task, schedule, f"{task.name}:{label or position}")
        if any(e.id == entry.id for e in entries):
            raise TaskDefinitionError(
                f"{task.__module__}.{task.__qualname__}: two schedules have the id {entry.id!r}."
            )
        entries.append(entry)
    return tuple(entries)
