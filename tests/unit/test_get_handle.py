"""A handle from a run id (issue 22, item 10): ``tasks.get_handle(run_id)`` and the typed
``Task.handle(run_id)``, Celery's ``AsyncResult(id)``."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend
from tests.testapp.tasks import AddParams, AddTask


class PriceParams(BaseModel):
    amount: int


class PriceResult(BaseModel):
    total: int


class PriceTask(tasks.Task[PriceParams, PriceResult]):
    name = "tests.get_handle.price"

    def run(self) -> PriceResult:
        return PriceResult(total=self.params.amount * 2)


DATABASE = "django_generic_tasks.backends.DatabaseBackend"
pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(TASKS_BACKEND=DATABASE)
def test_get_handle_finds_a_run_by_id_and_refreshes_waits_and_cancels() -> None:
    started = PriceTask(PriceParams(amount=1)).start()
    waiting = PriceTask(PriceParams(amount=2)).start()
    handle = tasks.get_handle(started.id)
    assert (handle.id, handle.name, handle.status) == (
        started.id,
        PriceTask.name,
        tasks.TaskStatus.READY,
    )
    assert handle.refresh().status is tasks.TaskStatus.READY
    from django_generic_tasks.worker import Worker, WorkerOptions

    Worker(WorkerOptions(once=True, concurrency=1)).run(install_signals=False)
    assert tasks.get_handle(waiting.id).status is tasks.TaskStatus.SUCCEEDED  # ran both
    result = tasks.get_handle(started.id).wait(timeout=5)
    assert result == PriceResult(total=2)  # decoded to the task's result type
    later = PriceTask(PriceParams(amount=3)).start()
    assert tasks.get_handle(later.id).cancel().status is tasks.TaskStatus.CANCELLED


@override_settings(TASKS_BACKEND=DATABASE)
def test_task_handle_is_typed_and_refuses_another_tasks_run() -> None:
    mine = PriceTask(PriceParams(amount=4)).start()
    other = AddTask(AddParams(a=1)).start()
    assert PriceTask.handle(mine.id).id == mine.id
    with pytest.raises(tasks.RunNotFoundError, match=r"not of tests\.get_handle\.price"):
        PriceTask.handle(other.id)


@override_settings(TASKS_BACKEND=DATABASE)
def test_an_unknown_run_id_is_run_not_found() -> None:
    with pytest.raises(tasks.RunNotFoundError):
        tasks.get_handle(str(uuid.uuid4()))
    with pytest.raises(tasks.RunNotFoundError):
        tasks.get_handle("not-a-run-id")


def test_a_given_backend_is_used_and_its_missing_runs_are_run_not_found() -> None:
    backend = InMemoryBackend()
    started = PriceTask(PriceParams(amount=5)).start(backend=backend)
    assert tasks.get_handle(started.id, backend=backend).status is tasks.TaskStatus.READY
    with pytest.raises(tasks.RunNotFoundError):
        tasks.get_handle(str(uuid.uuid4()), backend=backend)


def test_a_backend_that_keeps_no_runs_says_so() -> None:
    with pytest.raises(tasks.ResultNotAvailableError, match="ImmediateBackend"):
        tasks.get_handle(str(uuid.uuid4()), backend=ImmediateBackend())


def test_get_handle_is_public() -> None:
    assert "get_handle" in tasks.__all__
    assert tasks.get_handle.__doc__
