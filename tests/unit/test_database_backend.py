"""DatabaseBackend: rows written in the caller's transaction, keys, bulk starts, results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core import checks
from django.db import transaction
from django.test import override_settings

from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import ConfigurationError, RunNotFoundError
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.testapp.tasks import AddTask, FlakyTask

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backend() -> DatabaseBackend:
    return DatabaseBackend()


def drain(**options: object) -> int:
    """Run an in-process worker on this thread until nothing is due."""
    defaults: dict[str, object] = {"once": True, "interval": 0.02, "concurrency": 2}
    defaults.update(options)
    return Worker(WorkerOptions(**defaults)).run(install_signals=False)  # type: ignore[arg-type]


def test_start_writes_a_ready_row_with_the_task_options(backend: DatabaseBackend) -> None:
    handle = AddTask({"a": 1, "b": 2}).start(backend=backend, priority=5, queue="mail")
    run = TaskRun.objects.get(pk=handle.id)
    assert handle.status is TaskStatus.READY
    assert (run.task_name, run.params, run.queue, run.priority) == (
        "tests.add",
        {"a": 1, "b": 2},
        "mail",
        5,
    )
    assert (run.status, run.attempt, run.max_attempts) == ("ready", 0, 1)
    assert uuid.UUID(handle.id).version == 7


def test_delayed_start_is_scheduled_until_its_time(backend: DatabaseBackend) -> None:
    handle = AddTask({"a": 1}).start(backend=backend, delay=timedelta(hours=1))
    run = TaskRun.objects.get(pk=handle.id)
    assert handle.status is TaskStatus.SCHEDULED
    assert run.status == "scheduled"
    assert run.run_after > datetime.now(UTC) + timedelta(minutes=59)
    assert drain() == 0
    assert TaskRun.objects.get(pk=handle.id).status == "scheduled"


def test_rolled_back_transaction_leaves_no_run(backend: DatabaseBackend) -> None:
    def start_then_fail() -> None:
        with transaction.atomic():
            AddTask({"a": 1}).start(backend=backend)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        start_then_fail()
    assert TaskRun.objects.count() == 0


def test_committed_transaction_run_is_picked_up_by_the_worker(backend: DatabaseBackend) -> None:
    with transaction.atomic():
        handle = AddTask({"a": 40, "b": 2}).start(backend=backend)
        assert handle.status is TaskStatus.READY  # written now, not on commit
    assert drain() == 1
    handle.refresh()
    assert (handle.status, handle.result, handle.attempts) == (TaskStatus.SUCCEEDED, 42, 1)


def test_second_start_with_the_same_key_returns_the_unfinished_run(
    backend: DatabaseBackend,
) -> None:
    first = AddTask({"a": 1}).start(backend=backend, key="invoice-7")
    second = AddTask({"a": 2}).start(backend=backend, key="invoice-7")
    assert second.id == first.id
    assert TaskRun.objects.count() == 1
    drain()
    third = AddTask({"a": 3}).start(backend=backend, key="invoice-7")
    assert third.id != first.id
    assert TaskRun.objects.filter(key="invoice-7").count() == 2


def test_bulk_start_with_duplicate_keys_inserts_each_key_once(backend: DatabaseBackend) -> None:
    from django_generic_tasks.core.enqueue import EnqueueRequest

    requests = [EnqueueRequest.for_task(AddTask({"a": i}), key=f"k{i % 3}") for i in range(7)]
    handles = backend.enqueue_many(requests)
    assert TaskRun.objects.count() == 3
    assert len({h.id for h in handles}) == 3
    assert handles[0].id == handles[3].id == handles[6].id


@pytest.mark.parametrize("count", [1, 3, 120, 2500])
def test_start_many_inserts_one_run_per_params_in_order(
    backend: DatabaseBackend, count: int
) -> None:
    handles = AddTask.start_many([{"a": i} for i in range(count)], backend=backend)
    assert len(handles) == count
    stored = dict(TaskRun.objects.values_list("id", "params"))
    assert [stored[uuid.UUID(h.id)]["a"] for h in handles] == list(range(count))


def test_get_result_of_an_unknown_or_malformed_id_raises_run_not_found(
    backend: DatabaseBackend,
) -> None:
    with pytest.raises(RunNotFoundError, match="no task run"):
        backend.get_result(str(uuid.uuid4()))
    with pytest.raises(RunNotFoundError, match="not a task run id"):
        backend.get_result("../etc/passwd")


def test_failed_run_exposes_its_error_through_the_handle(backend: DatabaseBackend) -> None:
    handle = FlakyTask({"token": "discard-me"}).start(backend=backend)
    drain()
    handle.refresh()
    assert handle.status is TaskStatus.DISCARDED
    assert handle.error is not None
    assert handle.error.message == "no point retrying"
    assert "Permanent" in handle.error.type
    assert "Traceback" in handle.error.traceback


def test_backend_is_configurable_by_dotted_path_and_options() -> None:
    from django_generic_tasks import conf

    with override_settings(
        TASKS_BACKEND="django_generic_tasks.backends.DatabaseBackend",
        TASKS_BACKEND_OPTIONS={"database": "default"},
    ):
        backend = conf.get_backend()
        assert isinstance(backend, DatabaseBackend)
        handle = AddTask({"a": 1}).start()
        assert TaskRun.objects.filter(pk=handle.id).exists()


def test_invalid_database_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        DatabaseBackend(database="")


def test_check_reports_an_unknown_database_alias() -> None:
    messages = DatabaseBackend(database="nope").check()
    assert [m.id for m in messages] == ["django_generic_tasks.E101"]
    assert all(m.level == checks.ERROR for m in messages)
    assert DatabaseBackend().check() == []
