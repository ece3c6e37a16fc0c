"""Cooperative cancel: ``handle.cancel()`` on waiting and running runs (database worker),
``check_cancelled()``, and timed-out attempts that never overlap their retry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection
from django.utils import timezone
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend, ImmediateBackend, InMemoryBackend
from django_generic_tasks.execution import Attempt, cancellation, execute
from django_generic_tasks.models import TaskRun, WorkerHeartbeat
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.polling import wait_until


class LoopParams(BaseModel):
    limit: float = 30.0


class LoopUntilCancelled(tasks.Task[LoopParams]):
    """Checks for a cancel every 10 ms (gives up after ``limit`` seconds); records in
    ``events`` that it started and that it saw the cancel."""

    name = "tests.cancel.loop"
    max_attempts = 3

    def run(self) -> str:
        events.append((self.context.attempt, "start"))
        deadline = time.monotonic() + self.params.limit
        while time.monotonic() < deadline:
            if self.cancel_requested:
                events.append((self.context.attempt, "cancel seen"))
            self.check_cancelled()
            time.sleep(0.01)
        return "not cancelled"


events: list[tuple[int, str]] = []
release = threading.Event()


class OverrunParams(BaseModel):
    pass


class Overruns(tasks.Task[OverrunParams]):
    """Attempt 1 overruns its timeout until released; attempt 2 returns at once."""

    name = "tests.cancel.overruns"
    timeout = 0.2
    max_attempts = 2
    backoff_base = 0.0
    backoff_jitter = False

    def run(self) -> bool:
        attempt = self.context.attempt
        events.append((attempt, "start"))
        if attempt == 1:
            wait_until(lambda: self.cancel_requested, timeout=30, interval=0.01)
            events.append((attempt, "asked to cancel"))
            release.wait(30)  # ignores the request for a while, like a slow card charge
        events.append((attempt, "end"))
        return True


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    events.clear()
    release.clear()
    yield
    release.set()


def run_worker(**options: object) -> tuple[Worker, threading.Thread]:
    """An in-process worker on a thread; heartbeats every 0.1 s (lease 0.3 s)."""
    defaults: dict[str, object] = {"interval": 0.02, "concurrency": 2, "lease": 0.3}
    defaults.update(options)
    worker = Worker(WorkerOptions(**defaults))  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
    thread.start()
    return worker, thread


def stop(worker: Worker, thread: threading.Thread) -> None:
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()


def status_of(handle: tasks.TaskHandle) -> str:
    return str(TaskRun.objects.get(pk=handle.id).status)


@pytest.mark.django_db(transaction=True)
def test_cancel_of_a_running_run_ends_it_cancelled_without_retry() -> None:
    handle = LoopUntilCancelled(LoopParams()).start(backend=DatabaseBackend())
    worker, thread = run_worker()
    told = False
    try:
        wait_until(lambda: (1, "start") in events)
        handle.cancel()
        asked_at = timezone.now()
        # Asked; the task decides when. On PostgreSQL the cancel's NOTIFY can reach the worker,
        # the task and its end before cancel() reads the run back.
        assert handle.status in (tasks.TaskStatus.RUNNING, tasks.TaskStatus.CANCELLED)
        # A beat that began after the cancel read it before writing the worker's row: from
        # then on the task was told, whether or not it has ended yet (checked in this order).
        beats = WorkerHeartbeat.objects.filter(pk=worker.id, last_beat__gte=asked_at)
        wait_until(beats.exists)
        told = cancellation.is_requested(handle.id) or (1, "cancel seen") in events
        assert told, "the worker never told the running task of its cancel"
        wait_until(lambda: status_of(handle) not in ("ready", "running"))
    finally:
        if not told:  # end the task now, not after its 30 s
            cancellation.request(handle.id)
        stop(worker, thread)
    handle.refresh()
    assert handle.status is tasks.TaskStatus.CANCELLED
    assert handle.attempts == 1
    assert handle.error is not None
    assert handle.error.type.endswith("TaskCancelled")
    assert not cancellation.is_requested(handle.id)


@pytest.mark.django_db
def test_a_retry_by_hand_forgets_the_cancel_request() -> None:
    handle = LoopUntilCancelled(LoopParams()).start(backend=DatabaseBackend(), on_commit=False)
    TaskRun.objects.filter(pk=handle.id).update(status="running")
    handle.cancel()
    TaskRun.objects.filter(pk=handle.id).update(status="cancelled")
    runs = store.for_connection(connection)
    assert runs.operations.retry(TaskRun.objects.filter(pk=handle.id), timezone.now())[0] == 1
    run = TaskRun.objects.get(pk=handle.id)
    assert (run.status, run.cancel_requested_at) == ("ready", None)


@pytest.mark.django_db(transaction=True)
def test_a_waiting_run_is_cancelled_at_once() -> None:
    handle = LoopUntilCancelled(LoopParams()).start(backend=DatabaseBackend())
    assert handle.cancel().status is tasks.TaskStatus.CANCELLED


@pytest.mark.parametrize("backend", [ImmediateBackend, InMemoryBackend])
def test_backends_that_cannot_cancel_say_so(backend: type) -> None:
    assert backend.supports_cancel is False
    handle = tasks.TaskHandle("0" * 32, "tests.cancel.loop", tasks.TaskStatus.READY, backend())
    with pytest.raises(tasks.UnsupportedOptionError, match="cannot cancel"):
        handle.cancel()


def test_check_cancelled_raises_only_once_a_cancel_was_requested() -> None:
    task = LoopUntilCancelled(LoopParams())
    task.check_cancelled()
    assert task.cancel_requested is False
    cancellation.request(task.context.run_id)
    try:
        assert task.cancel_requested is True
        with pytest.raises(tasks.TaskCancelled):
            task.check_cancelled()
    finally:
        cancellation.clear(task.context.run_id)


def test_task_cancelled_ends_the_run_cancelled_even_with_attempts_left() -> None:
    run_id = "0191e1a4-0000-7000-8000-000000000001"
    cancellation.request(run_id)
    try:
        outcome = execute(
            Attempt(task_name="tests.cancel.loop", params={}, run_id=run_id, attempt=1)
        )
    finally:
        cancellation.clear(run_id)
    assert outcome.status is tasks.TaskStatus.CANCELLED
    assert outcome.retry_at is None


@pytest.mark.django_db(transaction=True)
def test_a_timed_out_attempt_and_its_retry_never_overlap() -> None:
    handle = Overruns(OverrunParams()).start(backend=DatabaseBackend())
    worker, thread = run_worker()
    try:
        wait_until(lambda: (1, "asked to cancel") in events)
        lease_held = TaskRun.objects.get(pk=handle.id)
        assert (lease_held.status, lease_held.attempt) == ("running", 1)
        assert (2, "start") not in events
        release.set()
        wait_until(lambda: status_of(handle) == "succeeded")
    finally:
        stop(worker, thread)
    assert events == [(1, "start"), (1, "asked to cancel"), (1, "end"), (2, "start"), (2, "end")]
    assert TaskRun.objects.get(pk=handle.id).attempt == 2
