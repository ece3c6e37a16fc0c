"""System checks of periodic tasks.

| id | problem |
| --- | --- |
| ``django_generic_tasks.E501`` | a bad ``TASKS_SCHEDULES`` entry, or a shared schedule id |
| ``django_generic_tasks.E502`` | a schedule asks what ``TASKS_BACKEND`` cannot do |
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from ..check_ids import CheckId
from ..exceptions import TaskDefinitionError, TasksError


@register(Tags.compatibility)
def check_schedules(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every ``TASKS_SCHEDULES`` entry is valid, ids are unique, the backend can fire them."""
    from django.conf import settings

    from .registry import all_entries, settings_entry

    raw = getattr(settings, "TASKS_SCHEDULES", None) or {}
    if not isinstance(raw, dict):
        return [
            Error(
                "TASKS_SCHEDULES must be a dict of schedule id -> schedule.",
                id=CheckId.SCHEDULES_INVALID,
            )
        ]
    messages: list[CheckMessage] = []
    for key, spec in raw.items():
        try:
            settings_entry(key, spec)
        except TaskDefinitionError as exc:
            messages.append(Error(str(exc), id=CheckId.SCHEDULES_INVALID))
    if messages:
        return messages
    try:
        entries = all_entries()
    except TaskDefinitionError as exc:
        return [Error(str(exc), id=CheckId.SCHEDULES_INVALID)]
    if not entries:
        return []
    from ..conf import get_backend
    from .firing import check_backend

    try:
        check_backend({e.id: e for e in entries}, get_backend())
    except TasksError as exc:  # an unusable backend itself is E001/E002's business
        if type(exc).__name__ == "UnsupportedOptionError":
            messages.append(Error(str(exc), id=CheckId.SCHEDULES_UNSUPPORTED_BY_BACKEND))
    return messages
