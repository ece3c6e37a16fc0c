"""Batches: every start inside ``with tasks.batch():`` joins; callbacks start once, when the
block ended and the last run ended; the batch counts its runs by status."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend, ImmediateBackend, InMemoryBackend
from django_generic_tasks.models import TaskRun, TaskWorkflow, WorkflowMember
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.unit import workflow_tasks as wt


@pytest.fixture(autouse=True)
def _clear() -> None:
    wt.seen.clear()


def drain() -> int:
    worker = Worker(WorkerOptions(once=True, interval=0.02, concurrency=2))
    watchdog = threading.Timer(30, worker.stop)
    watchdog.start()
    try:
        return worker.run(install_signals=False)
    finally:
        watchdog.cancel()


def callbacks() -> dict[str, tasks.Task]:  # type: ignore[type-arg]
    return {
        "on_success": wt.Remember(wt.Note(text="success")),
        "on_finish": wt.Remember(wt.Note(text="finish")),
        "on_failure": wt.Remember(wt.Note(text="failure")),
    }


@pytest.mark.django_db(transaction=True)
def test_a_batch_on_the_database_starts_its_callbacks_once_its_last_run_ended() -> None:
    backend = DatabaseBackend()
    with tasks.batch(**callbacks(), backend=backend) as batch:
        for n in range(3):
            wt.AddOne(wt.Number(n=n)).start(backend=backend)
        wt.AddOne.start_many([{"n": 7}], backend=backend)
    assert WorkflowMember.objects.filter(workflow_id=batch.id).count() == 4
    drain()
    assert batch.wait(timeout=5) == {"succeeded": 4}
    assert sorted(wt.seen) == ["finish", "success"]
    assert TaskWorkflow.objects.get(pk=batch.id).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_a_batch_with_a_failed_run_starts_on_failure_and_on_finish() -> None:
    backend = DatabaseBackend()
    with tasks.batch(**callbacks(), backend=backend) as batch:
        wt.FailIfOdd(wt.Wrapped(value=1)).start(backend=backend)
        wt.FailIfOdd(wt.Wrapped(value=2)).start(backend=backend)
    drain()
    assert batch.wait(timeout=5) == {"failed": 1, "succeeded": 1}
    assert sorted(wt.seen) == ["failure", "finish"]


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_runs_ended_before_its_block_did_ends_when_the_block_ends() -> None:
    backend = DatabaseBackend()
    with tasks.batch(on_finish=wt.Remember(wt.Note(text="finish")), backend=backend) as batch:
        wt.AddOne(wt.Number(n=1)).start(backend=backend)
        drain()  # the run ended; the batch is still open
        assert TaskWorkflow.objects.get(pk=batch.id).status == "running"
    assert TaskRun.objects.filter(task_name="tests.wf.remember").count() == 1
    drain()
    assert wt.seen == ["finish"]


@pytest.mark.django_db(transaction=True)
def test_an_empty_batch_ends_at_once() -> None:
    backend = DatabaseBackend()
    with tasks.batch(on_finish=wt.Remember(wt.Note(text="finish")), backend=backend) as batch:
        pass
    drain()
    assert batch.wait(timeout=5) == {}
    assert wt.seen == ["finish"]


@pytest.mark.django_db(transaction=True)
def test_a_batch_opened_in_a_rolled_back_transaction_leaves_nothing() -> None:
    backend = DatabaseBackend()

    def open_then_fail() -> None:
        with transaction.atomic(), tasks.batch(backend=backend):
            wt.AddOne(wt.Number(n=1)).start(backend=backend)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        open_then_fail()
    assert TaskWorkflow.objects.count() == TaskRun.objects.count() == 0
    assert connection.in_atomic_block is False


def test_a_batch_on_immediate_and_in_memory() -> None:
    with tasks.batch(**callbacks(), backend=ImmediateBackend()) as batch:
        wt.AddOne(wt.Number(n=1)).start(backend=batch.backend)
        wt.FailIfOdd(wt.Wrapped(value=3)).start(backend=batch.backend)
        assert wt.seen == []  # the runs ran; the block has not ended
    assert sorted(wt.seen) == ["failure", "finish"]
    assert batch.counts() == {"succeeded": 1, "failed": 1}
    wt.seen.clear()
    memory = InMemoryBackend()
    with tasks.batch(**callbacks(), backend=memory) as batch:
        wt.AddOne(wt.Number(n=1)).start(backend=memory)
    memory.run_all()
    assert batch.wait(timeout=1) == {"succeeded": 1}
    assert sorted(wt.seen) == ["finish", "success"]


def test_a_start_inside_a_batch_goes_to_its_backend_and_batches_do_not_nest() -> None:
    backend = ImmediateBackend()
    with tasks.batch(backend=backend):
        with pytest.raises(tasks.InvalidOptionError, match="batch's backend"):
            wt.AddOne(wt.Number(n=1)).start(backend=ImmediateBackend())
        with pytest.raises(tasks.InvalidOptionError, match="do not nest"), tasks.batch():
            pass
    with pytest.raises(tasks.TaskDefinitionError):
        tasks.batch(on_finish=wt.Remember)  # type: ignore[arg-type]
