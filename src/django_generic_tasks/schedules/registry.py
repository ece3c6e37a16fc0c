"""Every declared schedule: the ``schedules`` of registered tasks plus ``TASKS_SCHEDULES``.

``TASKS_SCHEDULES`` is for tasks you cannot edit::

    TASKS_SCHEDULES = {
        "nightly-report": {"task": "reports.tasks.Build", "cron": "0 3 * * *",
                           "tz": "Europe/Berlin", "params": {"kind": "full"}},
    }

The key is the schedule id; ``task`` is a task name or the dotted path of a task class; the
other keys are ``Schedule``'s arguments (``every`` in seconds or as a ``timedelta``). The
system check ``django_generic_tasks.E501`` reports a bad entry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..core.schedule import Schedule, ScheduleEntry, resolve
from ..exceptions import TaskDefinitionError

ENTRIES_ATTRIBUTE = "_schedule_entries"
"""Where ``Task.__init_subclass__`` keeps a task's validated schedules."""
SETTINGS_KEYS = frozenset(
    {"task", "cron", "every", "params", "tz", "catch_up", "queue", "priority"}
)


def class_entries() -> list[ScheduleEntry]:
    """The schedules declared on registered task classes."""
    from ..core.registry import registry

    entries: list[ScheduleEntry] = []
    for task in registry:
        entries.extend(task.__dict__.get(ENTRIES_ATTRIBUTE, ()))
    return entries


def settings_entry(schedule_id: object, spec: object) -> ScheduleEntry:
    """One ``TASKS_SCHEDULES`` item validated; ``TaskDefinitionError`` saying what is wrong."""
    from django.utils.module_loading import import_string

    from ..core.registry import registry
    from ..core.task import Task

    where = f"TASKS_SCHEDULES[{schedule_id!r}]"
    if not isinstance(schedule_id, str) or not schedule_id:
        raise TaskDefinitionError(f"{where}: the key (schedule id) must be a non-empty string.")
    if not isinstance(spec, dict):
        raise TaskDefinitionError(f"{where} must be a dict with 'task' and 'cron' or 'every'.")
    unknown = sorted(set(spec) - SETTINGS_KEYS)
    if unknown:
        raise TaskDefinitionError(f"{where}: unknown key(s) {', '.join(unknown)}.")
    task_ref = spec.get("task")
    task: Any = None
    if isinstance(task_ref, str) and task_ref in registry:
        task = registry.get(task_ref)
    elif isinstance(task_ref, str):
        try:
            task = import_string(task_ref)
        except ImportError:
            task = None
    if not (isinstance(task, type) and issubclass(task, Task) and not task.abstract):
        raise TaskDefinitionError(
            f"{where}: 'task' must be a task name or the dotted path of a task class "
            f"(got {task_ref!r})."
        )
    options = {k: v for k, v in spec.items() if k != "task"}
    every = options.get("every")
    if isinstance(every, int | float) and not isinstance(every, bool):
        options["every"] = timedelta(seconds=every)
    try:
        schedule = Schedule(**options)
    except TypeError as exc:
        raise TaskDefinitionError(f"{where}: {exc}") from None
    try:
        entry = resolve(task, schedule, schedule_id)
    except TaskDefinitionError as exc:
        raise TaskDefinitionError(f"{where}: {exc}") from None
    return ScheduleEntry(
        entry.id, entry.task_name, schedule, entry.params_json, entry.timing, source="settings"
    )


def settings_entries() -> list[ScheduleEntry]:
    """The ``TASKS_SCHEDULES`` entries (raises ``TaskDefinitionError`` on the first bad one)."""
    from django.conf import settings

    raw = getattr(settings, "TASKS_SCHEDULES", None) or {}
    if not isinstance(raw, dict):
        raise TaskDefinitionError("TASKS_SCHEDULES must be a dict of schedule id -> schedule.")
    return [settings_entry(key, spec) for key, spec in raw.items()]


def all_entries() -> list[ScheduleEntry]:
    """Every schedule, ids unique (``TaskDefinitionError`` on a clash or a bad setting)."""
    entries = class_entries() + settings_entries()
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise TaskDefinitionError(f"Two schedules have the id {entry.id!r}.")
        seen.add(entry.id)
    return entries
