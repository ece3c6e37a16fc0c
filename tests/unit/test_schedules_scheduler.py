"""The scheduler fires each slot once however many run, follows catch_up, and loses nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.backends.memory import InMemoryBackend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.handles import TaskHandle
from django_generic_tasks.core.schedule import ScheduleEntry, resolve
from django_generic_tasks.models import ScheduleSlot, TaskRun
from django_generic_tasks.schedules.scheduler import CATCH_UP_LIMIT, Scheduler
from django_generic_tasks.signals import schedule_fired
from django_generic_tasks.store.slots import using
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def entry(catch_up: str = "latest", every: int = 60, **options: Any) -> ScheduleEntry:
    """A schedule of ``tests.add`` every ``every`` seconds."""
    schedule = tasks.Schedule(
        every=timedelta(seconds=every), params={"a": 1}, catch_up=catch_up, **options
    )  # type: ignore[arg-type]
    return resolve(AddTask, schedule, f"tests.add:{catch_up}")


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def scheduler(e: ScheduleEntry, clock: Clock, backend: Any = None) -> Scheduler:
    s = Scheduler([e], backend or DatabaseBackend(), wall=clock)
    s.start()
    return s


def slot_times(schedule_id: str) -> list[datetime]:
    return [s.slot_at for s in using().slots(schedule_id)]


def test_two_schedulers_fire_each_slot_exactly_once_with_its_run() -> None:
    clock = Clock(T0 - timedelta(seconds=1))
    e = entry(every=10)
    first, second = scheduler(e, clock), scheduler(e, clock)
    for step in range(12):
        clock.now = T0 + timedelta(seconds=5 * step, milliseconds=3)
        (first if step % 2 else second).tick()
        (second if step % 2 else first).tick()
    fired = first.fired + second.fired
    slots = [f.slot_at for f in fired]
    assert len(slots) == len(set(slots)) == 6
    assert slots
    assert sorted(slots) == [T0 + timedelta(seconds=10 * i) for i in range(6)]
    runs = set(TaskRun.objects.values_list("id", flat=True))
    assert {str(r) for r in runs} == {f.run_id for f in fired}
    assert ScheduleSlot.objects.filter(fired_at__isnull=True).count() == 0


def test_catch_up_latest_fires_only_the_newest_missed_slot() -> None:
    clock = Clock(T0 - timedelta(seconds=1))
    e = entry("latest")
    scheduler(e, clock).tick(T0)  # the last slot fired before the downtime
    clock.now = T0 + timedelta(hours=1, seconds=30)
    later = scheduler(e, clock)
    later.tick()
    assert slot_times(e.id) == [T0, T0 + timedelta(hours=1)]


def test_catch_up_all_fires_every_missed_slot_in_order_up_to_the_cap() -> None:
    clock = Clock(T0 - timedelta(seconds=1))
    e = entry("all")
    scheduler(e, clock).tick(T0)
    clock.now = T0 + timedelta(minutes=10, seconds=1)
    scheduler(e, clock).tick()
    assert slot_times(e.id) == [T0 + timedelta(minutes=m) for m in range(11)]
    clock.now = T0 + timedelta(days=1)
    again = scheduler(e, clock)
    again.tick()
    assert len(again.fired) == CATCH_UP_LIMIT
    assert [f.slot_at for f in again.fired] == sorted(f.slot_at for f in again.fired)
    assert again.fired[-1].slot_at == T0 + timedelta(days=1)


def test_catch_up_none_skips_missed_slots_but_fires_on_time_ones() -> None:
    clock = Clock(T0 - timedelta(seconds=1))
    e = entry("none")
    scheduler(e, clock).tick(T0)
    clock.now = T0 + timedelta(hours=1, minutes=5, seconds=31)
    late = scheduler(e, clock)
    late.tick()
    assert late.fired == []
    late.tick(T0 + timedelta(hours=1, minutes=6, seconds=2))
    assert [f.slot_at for f in late.fired] == [T0 + timedelta(hours=1, minutes=6)]


def test_a_new_schedule_starts_with_the_next_slot_not_the_past() -> None:
    clock = Clock(T0 + timedelta(seconds=30))
    s = scheduler(entry("all"), clock)
    s.tick()
    assert s.fired == []
    s.tick(T0 + timedelta(seconds=60))
    assert [f.slot_at for f in s.fired] == [T0 + timedelta(seconds=60)]


def test_each_fired_slot_is_logged_and_signalled(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        seen.append(kwargs)

    schedule_fired.connect(receiver)
    try:
        s = scheduler(entry(), Clock(T0 - timedelta(seconds=1)))
        with caplog.at_level("INFO", logger="django_generic_tasks.schedules"):
            s.tick(T0)
    finally:
        schedule_fired.disconnect(receiver)
    (fired,) = s.fired
    assert seen[0]["schedule_id"] == "tests.add:latest"
    assert seen[0]["slot_at"] == T0
    assert seen[0]["run_id"] == fired.run_id
    assert f"fired slot {T0.isoformat()}: run {fired.run_id}" in caplog.text


class FlakyBackend(InMemoryBackend):
    """Refuses hand-overs while ``down``."""

    down = True

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        if self.down:
            raise ConnectionError("broker down")
        return super().enqueue(request)


def test_a_failed_hand_over_is_retried_and_the_slot_fires_once() -> None:
    backend = FlakyBackend()
    clock = Clock(T0 - timedelta(seconds=1))
    s = scheduler(entry(), clock, backend)
    s.tick(T0)
    assert s.fired == []
    assert backend.requests == []
    backend.down = False
    s.tick(T0 + timedelta(seconds=61))  # lease of the failed claim not yet over
    assert [f.slot_at for f in s.fired] == [T0 + timedelta(seconds=60)]
    # the claim of T0 is abandoned: once its lease ends any scheduler fires it
    ScheduleSlot.objects.filter(slot_at=T0).update(lease_until=T0)
    recovered = s.recover()
    assert [f.slot_at for f in recovered] == [T0]
    assert len(backend.requests) == 2
    assert s.recover() == []


def test_an_abandoned_claim_is_fired_with_its_own_run_id_and_key() -> None:
    backend = InMemoryBackend()
    e = entry()
    using().claim(e.id, T0, "0190b7a4-5c1e-7000-8000-000000000001", T0, fired=False, lease=1)
    s = scheduler(e, Clock(T0 + timedelta(seconds=2)), backend)
    (fired,) = s.recover()
    (request,) = backend.requests
    assert request.run_id == fired.run_id == "0190b7a4-5c1e-7000-8000-000000000001"
    assert request.key == f"schedule:{request.run_id}"
    assert using().latest([e.id])[e.id].fired_at is not None


def test_schedule_queue_and_priority_override_the_task_options() -> None:
    backend = InMemoryBackend()
    s = scheduler(entry(queue="reports", priority=7), Clock(T0 - timedelta(seconds=1)), backend)
    s.tick(T0)
    (request,) = backend.requests
    assert (request.queue, request.priority, request.params_json) == ("reports", 7, '{"a":1,"b":0}')


class JumpingClock:
    """The real clock plus an offset the test changes while ``run()`` loops; stops the
    scheduler once ``seconds`` of real time have passed and ``done(self)`` holds (what the
    test waits for; counted, not assumed to happen within a time on a loaded machine), or
    after a minute."""

    def __init__(
        self,
        jump: timedelta,
        at: float,
        seconds: float,
        done: Callable[[JumpingClock], bool] = lambda clock: True,
    ) -> None:
        import time

        self.start = time.monotonic()
        self.jump, self.at, self.seconds, self.done = jump, at, seconds, done
        self.scheduler: Scheduler | None = None
        self.jumped_at: datetime | None = None

    def fired_since_the_jump(self, within: timedelta) -> list[datetime]:
        """Slots fired at or before ``within`` after the jumped-to time."""
        if self.scheduler is None or self.jumped_at is None:
            return []
        last = self.jumped_at + within
        return [f.slot_at for f in self.scheduler.fired if f.slot_at <= last]

    def __call__(self) -> datetime:
        import time

        elapsed = time.monotonic() - self.start
        now = datetime.now(UTC)
        if self.scheduler is not None and (
            (elapsed >= self.seconds and self.done(self)) or elapsed >= 60
        ):
            self.scheduler.stop()
        if elapsed < self.at:
            return now
        if self.jumped_at is None:
            self.jumped_at = now + self.jump
        return now + self.jump


@pytest.mark.slow
def test_a_clock_jumping_back_re_plans_and_keeps_firing_without_doubles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Runs until a slot of the new (earlier) time line has fired (or a minute has passed).
    within = timedelta(seconds=5)
    clock = JumpingClock(
        -timedelta(hours=1),
        at=1.5,
        seconds=4.0,
        done=lambda clock: bool(clock.fired_since_the_jump(within)),
    )
    s = Scheduler([entry(every=1)], DatabaseBackend(), wall=clock)
    clock.scheduler = s
    with caplog.at_level("WARNING", logger="django_generic_tasks.schedules"):
        s.run()
    assert "Wall clock jumped back" in caplog.text
    assert clock.jumped_at is not None
    assert clock.fired_since_the_jump(within), "nothing fired on the new (earlier) time line"
    slots = [f.slot_at for f in s.fired]
    assert len(slots) == len(set(slots))


@pytest.mark.slow
def test_a_clock_jumping_forward_fires_by_catch_up_not_every_skipped_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = JumpingClock(
        timedelta(hours=1),
        at=1.5,
        seconds=3.5,
        done=lambda clock: (
            clock.jumped_at is not None
            and clock.scheduler is not None
            and any(
                f.slot_at >= clock.jumped_at - timedelta(seconds=1) for f in clock.scheduler.fired
            )
        ),
    )
    s = Scheduler([entry(every=1)], DatabaseBackend(), wall=clock)
    clock.scheduler = s
    with caplog.at_level("WARNING", logger="django_generic_tasks.schedules"):
        s.run()
    assert "Wall clock jumped forward" in caplog.text
    assert len(s.fired) < 10  # "latest": one slot for the skipped hour, not 3,600
    assert clock.jumped_at is not None
    assert max(f.slot_at for f in s.fired) >= clock.jumped_at - timedelta(seconds=1)


def test_a_first_slot_whose_hand_over_failed_stays_due_until_it_fires() -> None:
    backend = FlakyBackend()
    s = scheduler(entry(), Clock(T0 - timedelta(seconds=1)), backend)
    s.tick(T0)
    assert s.fired == []
    ScheduleSlot.objects.all().delete()  # as if the claim had rolled back with the hand-over
    backend.down = False
    s.tick(T0 + timedelta(seconds=2))
    assert [f.slot_at for f in s.fired] == [T0]


def test_a_scheduler_started_while_the_database_is_down_waits_for_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.db import OperationalError

    from django_generic_tasks.store.slots import SlotStore

    real_latest = SlotStore.latest
    failures = [OperationalError("server closed the connection")]

    def latest(self: SlotStore, ids: Any = None) -> Any:
        if failures:
            raise failures.pop()
        return real_latest(self, ids)

    monkeypatch.setattr(SlotStore, "latest", latest)
    monkeypatch.setattr(
        "django_generic_tasks.schedules.scheduler._reset_connection", lambda _: None
    )
    s = Scheduler([entry()], DatabaseBackend(), wall=lambda: T0)
    waits: list[float | None] = []

    def wait(timeout: float | None = None) -> bool:
        waits.append(timeout)
        if len(waits) > 1:  # the back-off wait returns; the next (idle) one stops the loop
            s.stop()
        return False

    s._stop.wait = wait  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="django_generic_tasks.schedules"):
        s.run()
    assert "Database unavailable" in caplog.text
    assert waits[0] == 0.5
    assert s._heap, "the scheduler started once the database answered"
