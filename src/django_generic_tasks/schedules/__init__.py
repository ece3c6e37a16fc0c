"""Periodic tasks: ``Schedule`` values on tasks (or ``TASKS_SCHEDULES``), fired once per slot.

- ``spec``: the ``Schedule`` value and its validation against a task;
- ``timing``: slot times from cron (``cronsim``) or intervals;
- ``registry``: every declared schedule;
- ``firing``: claim a slot and start its run; ``scheduler``: the loop;
- ``cloudscheduler``: the sync to Google Cloud Scheduler (extra ``cloudscheduler``).
"""

from __future__ import annotations

from .spec import Schedule, ScheduleEntry

__all__ = ["Schedule", "ScheduleEntry"]
