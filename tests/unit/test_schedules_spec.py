"""Schedules are validated when the task class is defined; slot times follow cron and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends.memory import InMemoryBackend
from django_generic_tasks.core.registry import registry
from django_generic_tasks.core.schedule_timing import cron_timing, every_timing
from django_generic_tasks.schedules.checks import check_schedules as run_checks
from django_generic_tasks.schedules.registry import all_entries, class_entries

BERLIN = ZoneInfo("Europe/Berlin")


class NoPriorityBackend(InMemoryBackend):
    """A backend that cannot order runs by priority."""

    supports_priority = False


class DigestParams(BaseModel):
    """Which digest."""

    kind: str


def define(name: str, schedules: list[object]) -> type[tasks.Task[DigestParams]]:
    """Define (and register) a task class named ``name`` with ``schedules``."""
    task_name, task_schedules = name, schedules

    class Digest(tasks.Task[DigestParams]):
        """Sends a digest."""

        name = task_name
        schedules = task_schedules  # type: ignore[assignment]

        def run(self) -> None:
            pass

    return Digest


@pytest.fixture(autouse=True)
def _forget_tasks() -> object:
    before = set(registry.names())
    yield
    for name in set(registry.names()) - before:
        registry.unregister(name)


def test_a_valid_schedule_gets_an_id_from_task_name_and_name_or_position() -> None:
    define(
        "sched.digest",
        [
            tasks.Schedule(cron="0 6 * * mon-fri", tz="Europe/Berlin", params={"kind": "daily"}),
            tasks.Schedule(every=timedelta(seconds=30), params={"kind": "r"}, name="rolling"),
        ],
    )
    ids = {e.id for e in class_entries()}
    assert {"sched.digest:0", "sched.digest:rolling"} <= ids


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (tasks.Schedule(cron="61 * * * *", params={"kind": "x"}), "invalid cron expression"),
        (tasks.Schedule(cron="* * *", params={"kind": "x"}), "invalid cron expression"),
        (tasks.Schedule(cron="0 0 30 2 *", params={"kind": "x"}), "invalid cron expression"),
        (tasks.Schedule(cron="0 6 * * *", tz="Mars/Olympus", params={"kind": "x"}), "time zone"),
        (
            tasks.Schedule(cron="0 6 * * *", every=timedelta(hours=1), params={"kind": "x"}),
            "exactly one of cron= and every=",
        ),
        (tasks.Schedule(params={"kind": "x"}), "exactly one of cron= and every="),
        (tasks.Schedule(every=timedelta(milliseconds=500), params={"kind": "x"}), "at least 1"),
        (tasks.Schedule(every=timedelta(seconds=1.5), params={"kind": "x"}), "whole number"),
        (tasks.Schedule(cron="0 6 * * *", params={"kind": 3}), "invalid params"),
        (tasks.Schedule(cron="0 6 * * *", params={"kind": "x", "typo": 1}), "invalid params"),
        (tasks.Schedule(cron="0 6 * * *"), "invalid params"),
        (
            tasks.Schedule(cron="0 6 * * *", params={"kind": "x"}, catch_up="some"),  # type: ignore[arg-type]
            "catch_up",
        ),
        (tasks.Schedule(cron="0 6 * * *", params={"kind": "x"}, priority=500), "priority"),
    ],
)
def test_an_invalid_schedule_fails_the_class_definition_naming_task_and_schedule(
    schedule: tasks.Schedule, message: str
) -> None:
    with pytest.raises(tasks.TaskDefinitionError) as caught:
        define("sched.bad", [schedule])
    assert message in str(caught.value)
    assert "Digest schedule 'sched.bad:0'" in str(caught.value)


def test_two_schedules_with_one_name_are_refused() -> None:
    same = tasks.Schedule(cron="0 6 * * *", params={"kind": "x"}, name="a")
    with pytest.raises(tasks.TaskDefinitionError, match="two schedules have the id"):
        define("sched.twice", [same, same])


def test_a_task_without_schedules_keeps_no_schedule_state() -> None:
    cls = define("sched.none", [])
    assert "_schedule_entries" not in cls.__dict__


def test_spring_forward_runs_a_skipped_time_once_right_after_the_gap() -> None:
    timing = cron_timing("30 2 * * *", BERLIN)
    slot = timing.next_after(datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert slot.astimezone(BERLIN).isoformat() == "2026-03-29T03:00:00+02:00"
    following = timing.next_after(slot)
    assert following.astimezone(BERLIN).isoformat() == "2026-03-30T02:30:00+02:00"


def test_fall_back_runs_a_repeated_time_once_at_its_first_occurrence() -> None:
    timing = cron_timing("30 2 * * *", BERLIN)
    day = timing.slots_between(
        datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 25, 12, tzinfo=UTC), 10
    )
    assert [s.astimezone(BERLIN).isoformat() for s in day] == ["2026-10-25T02:30:00+02:00"]


def test_an_hourly_schedule_follows_real_hours_across_both_transitions() -> None:
    timing = cron_timing("0 * * * *", BERLIN)
    autumn = timing.slots_between(
        datetime(2026, 10, 24, 22, 30, tzinfo=UTC), datetime(2026, 10, 25, 3, 30, tzinfo=UTC), 50
    )
    assert len(autumn) == 5  # 01:00+02, 02:00+02, 02:00+01, 03:00+01, 04:00+01 in Berlin
    spring = timing.slots_between(
        datetime(2026, 3, 28, 22, 30, tzinfo=UTC), datetime(2026, 3, 29, 3, 30, tzinfo=UTC), 50
    )
    assert [s.astimezone(BERLIN).hour for s in sorted(spring)] == [0, 1, 3, 4, 5]


def test_interval_slots_are_aligned_to_the_epoch_so_every_process_agrees() -> None:
    timing = every_timing(timedelta(seconds=7))
    moment = datetime(2026, 1, 1, 0, 0, 3, 5, tzinfo=UTC)
    slot = timing.next_after(moment)
    assert int(slot.timestamp()) % 7 == 0
    assert timing.next_after(slot) == slot + timedelta(seconds=7)


def test_settings_schedules_are_checked(settings: object) -> None:
    settings.TASKS_SCHEDULES = {  # type: ignore[attr-defined]
        "ok": {"task": "tests.add", "every": 60, "params": {"a": 1}},
        "bad-cron": {"task": "tests.add", "cron": "every day", "params": {"a": 1}},
        "bad-task": {"task": "no.such.Task", "cron": "0 * * * *"},
        "bad-key": {"task": "tests.add", "cron": "0 * * * *", "params": {"a": 1}, "when": 1},
    }
    errors = [m for m in run_checks() if m.id == "django_generic_tasks.E501"]
    text = "\n".join(m.msg for m in errors)
    assert len(errors) == 3
    assert "TASKS_SCHEDULES['bad-cron']" in text
    assert "TASKS_SCHEDULES['bad-task']" in text
    assert "unknown key(s) when" in text


def test_settings_schedules_join_the_class_schedules(settings: object) -> None:
    settings.TASKS_SCHEDULES = {  # type: ignore[attr-defined]
        "nightly": {"task": "tests.testapp.tasks.AddTask", "cron": "0 3 * * *", "params": {"a": 2}}
    }
    entry = next(e for e in all_entries() if e.id == "nightly")
    assert entry.task_name == "tests.add"
    assert entry.source == "settings"
    assert not [m for m in run_checks() if m.id.startswith("django_generic_tasks.E5")]


def test_a_schedule_priority_the_backend_cannot_honour_fails_the_check(settings: object) -> None:
    settings.TASKS_BACKEND = NoPriorityBackend  # type: ignore[attr-defined]
    settings.TASKS_SCHEDULES = {  # type: ignore[attr-defined]
        "urgent": {"task": "tests.add", "cron": "0 3 * * *", "params": {"a": 2}, "priority": 5}
    }
    ids = [m.id for m in run_checks()]
    assert "django_generic_tasks.E502" in ids
