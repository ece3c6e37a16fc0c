"""Periodic tasks: ``Schedule`` values on tasks (or ``TASKS_SCHEDULES``), fired once per slot.

- the ``Schedule`` value and its validation against a task, and slot times from cron or
  intervals, are part of the task model (``core.schedule``, ``core.schedule_timing``);
- ``registry``: every declared schedule;
- ``firing``: claim a slot and start its run; ``scheduler``: the loop;
- ``cloudscheduler``: the sync to Google Cloud Scheduler (extra ``cloudscheduler``).
"""

from __future__ import annotations

from ..core.schedule import Schedule, ScheduleEntry

__all__ = ["Schedule", "ScheduleEntry"]
