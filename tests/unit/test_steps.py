"""Steps that resume: completed steps are skipped on the next attempt of the run and an
iterating step goes on from its saved cursor."""

from __future__ import annotations

import threading
import time

import pytest

import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend, ImmediateBackend, ThreadingBackend
from django_generic_tasks.execution.steps import IN_PROCESS
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.unit import workflow_tasks as wt


@pytest.fixture(autouse=True)
def _clear() -> None:
    wt.seen.clear()
    wt.failed_once.clear()


def drain() -> int:
    worker = Worker(WorkerOptions(once=True, interval=0.02, concurrency=1))
    watchdog = threading.Timer(30, worker.stop)
    watchdog.start()
    try:
        return worker.run(install_signals=False)
    finally:
        watchdog.cancel()


RESUMED = ["fetch", "item 0", "item 1", "item 2", "item 3", "notify"]


def test_a_retried_run_skips_completed_steps_and_resumes_from_its_cursor() -> None:
    handle = wt.Resumable(wt.Items(count=4, fail_at=2)).start(backend=ImmediateBackend())
    assert handle.status is tasks.TaskStatus.SUCCEEDED
    assert handle.attempts == 2
    assert wt.seen == RESUMED  # no "fetch" again, items 0 and 1 not again


@pytest.mark.django_db(transaction=True)
def test_on_the_database_the_steps_are_kept_on_the_run() -> None:
    handle = wt.Resumable(wt.Items(count=4, fail_at=2)).start(backend=DatabaseBackend())
    drain()
    run = TaskRun.objects.get(pk=handle.id)
    assert (run.status, run.attempt) == ("succeeded", 2)
    assert wt.seen == RESUMED
    assert run.steps == {"done": ["fetch", "process", "notify"], "cursors": {"process": 3}}


@pytest.mark.django_db(transaction=True)
def test_a_stopping_worker_puts_the_run_back_at_the_next_step_boundary() -> None:
    class Slow(tasks.Task[wt.Items, int]):
        name = "tests.wf.slow_steps"
        step_save_every = 10.0  # the stop saves the cursor anyway

        def run(self) -> int:
            with self.step("process") as step:
                start = 0 if step.cursor is None else step.cursor + 1
                for item in range(start, self.params.count):
                    wt.seen.append(f"item {item}")
                    time.sleep(0.02)
                    step.advance(item)
            return self.params.count

    try:
        handle = Slow(wt.Items(count=40)).start(backend=DatabaseBackend())
        worker = Worker(WorkerOptions(interval=0.02, concurrency=1, grace=10))
        thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
        thread.start()
        while len(wt.seen) < 5:
            time.sleep(0.01)
        worker.stop()
        thread.join(30)
        run = TaskRun.objects.get(pk=handle.id)
        assert run.status in ("scheduled", "ready")  # put back, the same attempt
        assert run.attempt == 0
        stopped_at = run.steps["cursors"]["process"]
        assert 4 <= stopped_at < 39
        time.sleep(1.1)  # the put-back run is due again after a second
        drain()
        run.refresh_from_db()
        assert run.status == "succeeded"
        items = [int(text.split()[1]) for text in wt.seen]
        assert items == list(range(40))  # each item once: resumed after the saved cursor
    finally:
        tasks.registry.unregister(Slow.name)


class SeldomSaved(tasks.Task[wt.Items, int]):
    """Iterates ``count`` items in a ``for`` step that saves its cursor only when it stops
    (``step_save_every`` is long); fails once at ``fail_at``."""

    name = "tests.wf.seldom_saved"
    max_attempts = 2
    backoff_base = 0.0
    step_save_every = 3600.0

    def run(self) -> int:
        for step in self.step("items"):
            start = 0 if step.cursor is None else step.cursor + 1
            for item in range(start, self.params.count):
                if item == self.params.fail_at and item not in wt.failed_once:
                    wt.failed_once.add(item)
                    raise RuntimeError(f"item {item} failed once")
                wt.seen.append(f"item {item}")
                step.advance(item)
        return self.params.count


def test_a_for_step_whose_body_raises_keeps_the_cursor_it_reached() -> None:
    handle = SeldomSaved(wt.Items(count=5, fail_at=3)).start(backend=ImmediateBackend())
    assert handle.status is tasks.TaskStatus.SUCCEEDED
    assert handle.attempts == 2
    assert wt.seen == ["item 0", "item 1", "item 2", "item 3", "item 4"]  # none twice


class WithThenFail(tasks.Task[wt.Items, int]):
    """A ``with`` step over ``count`` items, then a step that fails on the first attempt."""

    name = "tests.wf.with_then_fail"
    max_attempts = 2
    backoff_base = 0.0

    def run(self) -> int:
        with self.step("items") as step:
            wt.seen.append(f"items body, done before: {step.done}")
            start = 0 if step.cursor is None else step.cursor + 1
            for item in range(start, self.params.count):
                wt.seen.append(f"item {item}")
                step.advance(item)
        for _ in self.step("last"):
            if not wt.failed_once:
                wt.failed_once.add(0)
                raise RuntimeError("the last step failed once")
        return self.params.count


def test_a_completed_with_step_runs_its_body_again_but_no_item_again() -> None:
    handle = WithThenFail(wt.Items(count=3)).start(backend=ImmediateBackend())
    assert handle.status is tasks.TaskStatus.SUCCEEDED
    assert wt.seen == [
        "items body, done before: False",
        "item 0",
        "item 1",
        "item 2",
        "items body, done before: True",  # Python cannot skip a with body
    ]


def test_backends_without_a_step_store_refuse_steps() -> None:
    from django_generic_tasks.core.status import new_run_id
    from django_generic_tasks.execution import Attempt, execute

    attempt = Attempt(
        task_name=wt.Resumable.name,
        params={"count": 1},
        run_id=new_run_id(),
        max_attempts=1,
        backend=ThreadingBackend.name,
    )
    outcome = execute(attempt)
    assert outcome.status is tasks.TaskStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type.endswith("UnsupportedOptionError")
    assert wt.seen == []


def test_a_step_needs_a_name() -> None:
    task = wt.Resumable(wt.Items(count=1))
    with pytest.raises(tasks.InvalidOptionError):
        task.step("")
    assert IN_PROCESS.load("nothing") is None
