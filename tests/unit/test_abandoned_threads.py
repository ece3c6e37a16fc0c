"""Attack (issue 10, item 9): timed-out sync tasks must not leave a thread per call.

Python cannot stop a thread, so a sync task that overruns its ``timeout`` keeps running. At
most ``TASKS_MAX_ABANDONED_THREADS`` such threads are left per process; then timed runs are
refused with ``CapacityExceededError`` before they start (logged), until some finish.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.test import override_settings
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import ImmediateBackend, ThreadingBackend
from django_generic_tasks.core.status import TaskStatus, new_run_id
from django_generic_tasks.exceptions import CapacityExceededError
from django_generic_tasks.execution import Attempt, execute
from django_generic_tasks.execution.timeouts import abandoned_threads
from tests import polling
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")

gate = threading.Event()
bodies: list[str] = []


class Nothing(BaseModel):
    pass


class Hang(tasks.Task[Nothing]):
    """Overruns its timeout until the test opens the gate."""

    name = "tests.abandoned.hang"
    timeout = 0.1

    def run(self) -> None:
        bodies.append("hang")
        gate.wait(60)


class Quick(tasks.Task[Nothing]):
    """A timed task well within its timeout."""

    name = "tests.abandoned.quick"
    timeout = 30

    def run(self) -> str:
        bodies.append("quick")
        return "done"


class Untimed(tasks.Task[Nothing]):
    """No timeout: never runs on a helper thread, never refused."""

    name = "tests.abandoned.untimed"

    def run(self) -> str:
        return "untimed"


@pytest.fixture(autouse=True)
def _gate() -> Iterator[None]:
    polling.wait_until(lambda: abandoned_threads() == 0, 30)  # earlier tests' threads ended
    gate.clear()
    bodies.clear()
    yield
    gate.set()
    polling.wait_until(lambda: abandoned_threads() == 0, 30)


def test_twenty_timed_out_calls_leave_at_most_the_bound_of_threads_then_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = threading.active_count()
    timed_out = refused = 0
    for _ in range(20):
        try:
            outcome = execute(Attempt(task_name=Hang.name, params="{}", run_id=new_run_id()))
        except CapacityExceededError:
            refused += 1
        else:
            assert outcome.status is TaskStatus.FAILED
            assert outcome.error is not None
            assert outcome.error.type.endswith("TaskTimeoutError")
            timed_out += 1
    assert (timed_out, refused) == (8, 12)  # the default TASKS_MAX_ABANDONED_THREADS is 8
    assert bodies == ["hang"] * 8  # refused runs never started
    assert threading.active_count() - before <= 8
    assert abandoned_threads() == 8
    assert any("TASKS_MAX_ABANDONED_THREADS" in r.getMessage() for r in caplog.records)
    with pytest.raises(CapacityExceededError):
        execute(
            Attempt(task_name=Quick.name, params="{}", run_id=new_run_id())
        )  # any timed sync run is refused
    assert (
        execute(Attempt(task_name=Untimed.name, params="{}", run_id=new_run_id())).result
        == "untimed"
    )


def test_timed_runs_are_accepted_again_once_abandoned_threads_finish() -> None:
    with override_settings(TASKS_MAX_ABANDONED_THREADS=2):
        for _ in range(2):
            execute(Attempt(task_name=Hang.name, params="{}", run_id=new_run_id()))
        with pytest.raises(CapacityExceededError, match="TASKS_MAX_ABANDONED_THREADS = 2"):
            execute(Attempt(task_name=Quick.name, params="{}", run_id=new_run_id()))
        gate.set()
        polling.wait_until(lambda: abandoned_threads() == 0, 30)
        assert (
            execute(Attempt(task_name=Quick.name, params="{}", run_id=new_run_id())).result
            == "done"
        )


def test_a_limit_of_zero_refuses_timed_runs_only_while_one_is_abandoned() -> None:
    with override_settings(TASKS_MAX_ABANDONED_THREADS=0):
        assert (
            execute(Attempt(task_name=Quick.name, params="{}", run_id=new_run_id())).result
            == "done"
        )
        execute(Attempt(task_name=Hang.name, params="{}", run_id=new_run_id()))
        assert abandoned_threads() == 1
        with pytest.raises(CapacityExceededError):
            execute(Attempt(task_name=Quick.name, params="{}", run_id=new_run_id()))


def test_immediate_backend_start_raises_capacity_exceeded_and_runs_nothing() -> None:
    with override_settings(TASKS_MAX_ABANDONED_THREADS=1):
        Hang({}).start(backend=ImmediateBackend())
        with pytest.raises(CapacityExceededError):
            Quick({}).start(backend=ImmediateBackend())
    assert bodies == ["hang"]


def test_threading_backend_requeues_a_refused_run_with_its_attempt_intact() -> None:
    backend = ThreadingBackend(max_workers=1)
    try:
        with override_settings(TASKS_MAX_ABANDONED_THREADS=1):
            Hang({}).start(backend=backend)
            assert backend.wait_idle(30)
            handle = Quick({}).start(backend=backend)
            assert backend.wait_idle(30)  # refused and put back for later
            assert bodies == ["hang"]
            assert [r.run_id for _, _, r in backend._later] == [handle.id]
            assert backend._later[0][2].attempt == 1
            gate.set()
        polling.wait_until(lambda: abandoned_threads() == 0, 30)
    finally:
        backend.close(wait=False)


@pytest.mark.django_db(transaction=True)
def test_database_worker_puts_a_refused_run_back_with_its_attempt_intact() -> None:
    from django_generic_tasks.backends import DatabaseBackend
    from django_generic_tasks.models import TaskRun
    from django_generic_tasks.worker import Worker, WorkerOptions

    backend = DatabaseBackend()
    with override_settings(TASKS_MAX_ABANDONED_THREADS=1):
        # The database worker waits for its own timed-out attempts (they never overlap their
        # retry); a timed-out run elsewhere in the process leaves the thread behind.
        execute(Attempt(task_name=Hang.name, params={}, run_id=new_run_id()))
        handle = Quick({}).start(backend=backend, on_commit=False)
        Worker(WorkerOptions(once=True, interval=0.02, concurrency=1)).run(install_signals=False)
    assert bodies == ["hang"]  # refused: never started
    run = TaskRun.objects.get(id=handle.id)
    assert (run.status, run.attempt) == (TaskStatus.SCHEDULED, 0)  # not failed, no attempt used
    assert run.error_type == ""
