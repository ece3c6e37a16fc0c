"""``DatabaseTaskBackend``: Django's ``django.tasks`` contract on our run store and worker.

Adapted from Django's own ``tests/tasks/`` (the immediate and custom-backend tests: enqueue,
results, exceptions, logs, context, queue validation, transactions) and from django-tasks-db's
database-backend tests (enqueue, get_result, defer, priority order, the worker command,
refresh), from "runs now" to "runs on the worker": each test enqueues, then drains an
in-process ``tasks_worker`` (``drain()``), then reads the result back.
"""

from __future__ import annotations

import logging
import pickle
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

pytest.importorskip("django.tasks", reason="DatabaseTaskBackend needs Django >= 6.0")

from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import (
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
    TaskResultMismatch,
)
from django.tasks.signals import task_enqueued, task_finished, task_started

from django_generic_tasks.backends import DatabaseBackend, DatabaseTaskBackend
from django_generic_tasks.core.registry import registry
from django_generic_tasks.exceptions import UnknownTaskError, WorkerLost
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests import djtasks
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db(transaction=True)
ALIAS = djtasks.BACKEND


def backend() -> Any:
    return task_backends[ALIAS]


def drain(**options: object) -> int:
    """Run an in-process worker on this thread until nothing is due (stopped after 30 s)."""
    defaults: dict[str, object] = {"once": True, "interval": 0.02, "concurrency": 1}
    defaults.update(options)
    worker = Worker(WorkerOptions(**defaults))  # type: ignore[arg-type]
    watchdog = threading.Timer(30, worker.stop)
    watchdog.start()
    try:
        return worker.run(install_signals=False)
    finally:
        watchdog.cancel()


@pytest.fixture
def side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "side-effects.log"
    log.touch()
    monkeypatch.setenv("CHAOS_LOG", str(log))
    return log


@pytest.fixture
def received() -> Iterator[list[tuple[str, type, Any]]]:
    """The ``django.tasks`` signals sent, as (signal, sender, status) in order."""
    seen: list[tuple[str, type, Any]] = []
    receivers = []
    for name, signal in (
        ("enqueued", task_enqueued),
        ("started", task_started),
        ("finished", task_finished),
    ):

        def receiver(sender: type, task_result: Any, _name: str = name, **kwargs: Any) -> None:
            seen.append((_name, sender, task_result.status))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


# -- the backend (Django: test_using_correct_backend, custom-backend options) ---------------


def test_the_alias_is_a_database_task_backend_with_its_options() -> None:
    assert isinstance(backend(), DatabaseTaskBackend)
    assert (backend().alias, backend().options, backend().database) == (ALIAS, {}, "default")
    assert backend().queues == {"default", "queue-1", "other"}
    flags = ("supports_defer", "supports_async_task", "supports_get_result", "supports_priority")
    assert all(getattr(backend(), flag) for flag in flags)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"databse": "default"}, "unknown keys \\['databse'\\]"),
        ({"database": ""}, "must be a connection alias"),
        ({"database": 3}, "must be a connection alias"),
    ],
)
def test_bad_options_are_refused_when_the_backend_is_built(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidTaskBackend, match=message):
        DatabaseTaskBackend("x", {"OPTIONS": options})


def test_the_system_check_passes_and_reports_an_unknown_database() -> None:
    assert backend().check() == []
    broken = DatabaseTaskBackend("x", {"OPTIONS": {"database": "nope"}})
    [message] = broken.check()
    assert message.id == "django_generic_tasks.E101"
    assert "'nope'" in message.msg


def test_django_runs_the_backend_checks() -> None:
    from django.tasks.checks import check_tasks

    with override_settings(
        TASKS={
            ALIAS: {
                "BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend",
                "OPTIONS": {"database": "nope"},
            }
        }
    ):
        found = [m.id for m in check_tasks()]
    assert "django_generic_tasks.E101" in found


# -- enqueue (Django: test_enqueue_task; django-tasks-db: test_enqueue_task) ----------------


@pytest.mark.parametrize("task", [djtasks.noop_task, djtasks.noop_task_async])
def test_enqueue_writes_one_ready_run_and_sends_task_enqueued(task: Any, received: list) -> None:
    result = task.enqueue(1, two=3)
    assert uuid.UUID(result.id).version == 7
    assert result.status == TaskResultStatus.READY
    assert not result.is_finished
    assert (result.started_at, result.last_attempted_at, result.finished_at) == (None,) * 3
    assert result.enqueued_at is not None
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert (result.task, result.args, result.kwargs, result.attempts) == (task, [1], {"two": 3}, 0)
    assert result.backend == ALIAS
    assert received == [("enqueued", DatabaseTaskBackend, TaskResultStatus.READY)]
    row = TaskRun.objects.get()
    assert (str(row.id), row.task_name, row.status) == (
        result.id,
        f"django.tasks:{task.module_path}",
        "ready",
    )
    assert (row.queue, row.priority, row.max_attempts) == ("default", 0, 1)


@pytest.mark.parametrize("task", [djtasks.noop_task, djtasks.noop_task_async])
def test_the_worker_runs_an_enqueued_function_and_the_result_says_successful(
    task: Any, received: list
) -> None:
    result = task.enqueue(1, two=3)
    assert drain() == 1
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished
    assert result.started_at is not None
    assert result.finished_at is not None
    assert result.last_attempted_at == result.started_at
    assert result.finished_at >= result.started_at >= result.enqueued_at
    assert result.return_value is None
    assert (result.args, result.kwargs, result.attempts) == ([1], {"two": 3}, 1)
    assert result.worker_ids[0].count(":") == 2  # host:pid:suffix, the worker's id
    assert received == [
        ("enqueued", DatabaseTaskBackend, TaskResultStatus.READY),
        ("started", DatabaseTaskBackend, TaskResultStatus.RUNNING),
        ("finished", DatabaseTaskBackend, TaskResultStatus.SUCCESSFUL),
    ]


def test_aenqueue_and_aget_result_and_arefresh() -> None:
    async def enqueue() -> Any:
        return await djtasks.calculate_meaning_of_life.aenqueue()

    result = async_to_sync(enqueue)()
    assert result.status == TaskResultStatus.READY
    assert async_to_sync(backend().aget_result)(result.id) == result
    drain()
    async_to_sync(result.arefresh)()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        42,
        1,
    )


def test_async_functions_run_on_the_worker_with_their_arguments() -> None:
    result = djtasks.add_async.enqueue(2, b=40)
    drain()
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


# -- results (django-tasks-db: test_get_result, test_refresh_result, missing ids) -----------


def test_get_result_reads_back_the_enqueued_result_exactly() -> None:
    result = backend().enqueue(djtasks.noop_task, [], {})
    assert backend().get_result(result.id) == result
    assert djtasks.noop_task.get_result(result.id) == result


def test_refresh_follows_the_run_through_its_statuses() -> None:
    result = djtasks.calculate_meaning_of_life.enqueue()
    TaskRun.objects.update(status="running", attempt=1, started_at=timezone.now(), worker_id="w1")
    result.refresh()
    assert (result.status, result.attempts, result.worker_ids) == (
        TaskResultStatus.RUNNING,
        1,
        ["w1"],
    )
    assert result.started_at is not None
    assert result.finished_at is None
    TaskRun.objects.update(status="ready", worker_id=None)
    drain()
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        42,
        2,
    )
    assert len(result.worker_ids) == 2


@pytest.mark.parametrize("result_id", [str(uuid.uuid4()), "123", "", 123])
def test_get_result_of_no_such_run_raises_task_result_does_not_exist(result_id: Any) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        backend().get_result(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(backend().aget_result)(result_id)


def test_a_run_of_one_of_our_tasks_is_not_a_django_task_result() -> None:
    handle = AddTask({"a": 1}).start(backend=DatabaseBackend())
    with pytest.raises(TaskResultDoesNotExist):
        backend().get_result(handle.id)


def test_get_result_through_another_task_is_a_mismatch() -> None:
    result = djtasks.noop_task.enqueue()
    with pytest.raises(TaskResultMismatch):
        djtasks.add.get_result(result.id)


def test_return_values_round_trip_json() -> None:
    value = {"text": "é ✓", "n": [1, 2.5, None, True], "nested": {"deep": [{"x": -1}]}}
    result = djtasks.echo.enqueue(value)
    tupled = djtasks.tuple_return_value.enqueue()
    drain()
    result.refresh()
    tupled.refresh()
    assert result.return_value == value
    assert result.args == [value]
    assert tupled.return_value == [1, "two", {"three": [4.5, None, True]}]


def test_arguments_without_a_json_form_are_refused_and_nothing_is_written() -> None:
    with pytest.raises(TypeError, match="Unsupported type"):
        djtasks.echo.enqueue(object())
    with pytest.raises(TypeError, match="Unsupported type"):
        async_to_sync(djtasks.echo.aenqueue)(timezone.now())
    assert not TaskRun.objects.exists()


@pytest.mark.skipif(
    django.VERSION < (6, 1),
    reason="Django 6.0's own TaskResult does not pickle (its task's function pickles by a name "
    "that holds the Task, on every backend); Django 6.1 pickles it",
)
def test_a_result_pickles_and_its_task_is_found_again() -> None:
    result = djtasks.add.using(priority=3).enqueue(1, b=2)
    assert pickle.loads(pickle.dumps(result)) == result


def test_the_registry_resolves_django_task_runs_but_does_not_list_them() -> None:
    name = "django.tasks:tests.djtasks.add_async"
    task_class = registry.get(name)
    assert (task_class.name, task_class.api_exposed) == (name, False)
    assert task_class.django_task is djtasks.add_async
    assert registry.get(name) is task_class  # made once
    assert name not in registry
    assert name not in registry.names()
    with pytest.raises(UnknownTaskError, match=r"not a django\.tasks Task"):
        registry.get("django.tasks:tests.djtasks.not_a_task")


# -- exceptions (Django: test_catches_exception, test_complex_exception, complex return) -----


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (djtasks.failing_task_value_error, "This Task failed due to ValueError"),
        (djtasks.failing_task_async, "This async Task failed"),
    ],
)
def test_an_exception_fails_the_run_with_its_class_path_and_traceback(
    task: Any, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    result = task.enqueue()
    with caplog.at_level(logging.ERROR, logger="django.tasks"):
        drain()
    errors = [r for r in caplog.records if r.name == "django.tasks"]
    assert len(errors) == 1
    assert message in errors[0].getMessage() + str(errors[0].exc_info)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished
    assert result.finished_at >= result.started_at >= result.enqueued_at
    [error] = result.errors
    assert error.exception_class is ValueError
    assert error.traceback.endswith(f"ValueError: {message}\n")
    assert (result.attempts, result.args, result.kwargs) == (1, [], {})


def test_system_exit_fails_the_run_and_the_worker_goes_on() -> None:
    result = djtasks.failing_task_system_exit.enqueue()
    after = djtasks.calculate_meaning_of_life.enqueue()
    assert drain() == 2
    result.refresh()
    after.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is SystemExit
    assert result.errors[0].traceback.endswith("SystemExit: This Task failed due to SystemExit\n")
    assert after.return_value == 42


def test_a_complex_exception_keeps_its_traceback() -> None:
    result = djtasks.complex_exception.enqueue()
    drain()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback


def test_a_return_value_without_a_json_form_fails_the_run_with_type_error() -> None:
    result = djtasks.complex_return_value.enqueue()
    drain()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_a_run_naming_no_task_fails_cleanly(side_effects: Path) -> None:
    result = djtasks.noop_task.enqueue()
    TaskRun.objects.update(task_name="django.tasks:tests.djtasks.not_a_task")
    other = djtasks.noop_task.enqueue()
    TaskRun.objects.filter(pk=other.id).update(task_name="django.tasks:tests.no_module.f")
    assert drain() == 2
    rows = {str(r.id): r for r in TaskRun.objects.all()}
    assert rows[result.id].status == rows[other.id].status == "failed"
    assert "not a django.tasks Task" in rows[result.id].error_message
    assert "cannot be imported" in rows[other.id].error_message


# -- logs (Django: test_enqueue_logs, test_failed_logs, no NoneType) -------------------------


def test_the_enqueue_and_the_run_log_as_django_backends_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        result = djtasks.noop_task.enqueue()
        failing = djtasks.failing_task_value_error.enqueue()
        drain()
    lines = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    mine = [line for line in lines if result.id in line]
    assert len(mine) == 3
    assert "enqueued" in mine[0]
    assert "state=RUNNING" in mine[1]
    assert "state=SUCCESSFUL" in mine[2]
    theirs = [line for line in lines if failing.id in line]
    assert "state=RUNNING" in theirs[1]
    assert "state=FAILED" in theirs[2]
    assert not any("NoneType" in line for line in mine)


# -- context (Django: test_takes_context, test_context) --------------------------------------


def test_a_function_that_takes_context_gets_its_result_and_attempt() -> None:
    own_id = djtasks.get_task_id.enqueue()
    context = djtasks.test_context.using(queue_name="other", priority=7).enqueue(1)
    drain()
    own_id.refresh()
    context.refresh()
    assert own_id.return_value == own_id.id
    assert context.return_value == {
        "attempt": 1,
        "status": "RUNNING",
        "id": context.id,
        "queue": "other",
        "priority": 7,
    }


# -- queues, priority, validation (Django: test_validate_on_enqueue; custom backend) --------


def test_a_queue_not_in_queues_is_refused_on_enqueue_and_aenqueue() -> None:
    task = djtasks.noop_task.using(queue_name="queue-1")
    with override_settings(
        TASKS={
            ALIAS: {
                "BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend",
                "QUEUES": ["other"],
            }
        }
    ):
        with pytest.raises(InvalidTask, match="Queue 'queue-1' is not valid for backend"):
            task.enqueue()
        with pytest.raises(InvalidTask, match="Queue 'queue-1' is not valid for backend"):
            async_to_sync(task.aenqueue)()
    assert not TaskRun.objects.exists()


def test_validate_task_refuses_what_django_refuses() -> None:
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        djtasks.noop_task.using(priority=101)
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        djtasks.noop_task.using(run_after=timezone.now().replace(tzinfo=None))
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        djtasks.noop_task.using(queue_name="nope")


def test_a_queue_name_too_long_for_the_run_store_is_refused() -> None:
    long = "q" * 101
    with (
        override_settings(
            TASKS={
                ALIAS: {
                    "BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend",
                    "QUEUES": [],
                }
            }
        ),
        pytest.raises(InvalidTask, match="1 to 100 characters"),
    ):
        djtasks.noop_task.using(queue_name=long)


def test_higher_priority_runs_first(side_effects: Path) -> None:
    for priority in (-5, 0, 10, 3):
        djtasks.record.using(priority=priority).enqueue(str(priority))
    drain(batch=1)
    assert side_effects.read_text().split() == ["dj", "10", "dj", "3", "dj", "0", "dj", "-5"]


def test_the_worker_serves_the_queue_it_is_given(side_effects: Path) -> None:
    djtasks.record.using(queue_name="other").enqueue("other")
    djtasks.record.enqueue("default")
    drain(queues=("other",))
    assert side_effects.read_text() == "dj other\n"


# -- defer (django-tasks-db: run_after) ------------------------------------------------------


def test_a_deferred_run_waits_for_run_after() -> None:
    later = timezone.now() + timedelta(hours=1)
    result = djtasks.add.using(run_after=later).enqueue(1, 2)
    assert result.task.run_after == later
    assert drain() == 0
    result.refresh()
    assert result.status == TaskResultStatus.READY
    assert backend().get_result(result.id).task.run_after == later
    TaskRun.objects.update(run_after=timezone.now() - timedelta(seconds=1))
    assert drain() == 1
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 3)


# -- the worker command (django-tasks-db: the db_worker tests) -------------------------------


def test_manage_py_tasks_worker_once_runs_django_tasks_beside_ours(side_effects: Path) -> None:
    djtasks.record.enqueue("sync")
    djtasks.record_async.enqueue("async")
    ours = AddTask({"a": 2, "b": 3}).start(backend=DatabaseBackend())
    call_command("tasks_worker", "--once", "--concurrency", "1", verbosity=0)
    assert sorted(side_effects.read_text().split("\n")) == ["", "dj sync", "dja async"]
    assert ours.refresh().result == 5
    assert set(TaskRun.objects.values_list("status", flat=True)) == {"succeeded"}


# -- transactions (Django: test_doesnt_wait_until_transaction_commit; django-tasks-db) ------


def test_an_enqueue_in_a_rolled_back_transaction_leaves_no_run() -> None:
    class Rollback(Exception):
        pass

    seen: list[Any] = []

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            seen.append(djtasks.noop_task.enqueue())
            seen.append(TaskRun.objects.count())
            raise Rollback

    with pytest.raises(Rollback):
        enqueue_then_fail()
    result, count_inside = seen
    assert result.enqueued_at is not None
    assert count_inside == 1
    assert not TaskRun.objects.exists()
    with pytest.raises(TaskResultDoesNotExist):
        backend().get_result(result.id)
    assert drain() == 0


def test_an_enqueue_in_a_transaction_is_seen_by_others_at_commit() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite locks the database for the transaction's writes")

    def count_elsewhere() -> int:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM django_generic_tasks_taskrun")
                return int(cursor.fetchone()[0])
        finally:
            other.close()

    with transaction.atomic():
        djtasks.noop_task.enqueue()
        assert count_elsewhere() == 0
    assert count_elsewhere() == 1


# -- crash safety: a run whose worker was lost runs again -----------------------------------


def test_a_run_whose_worker_was_lost_runs_again_and_counts_the_attempt() -> None:
    result = djtasks.calculate_meaning_of_life.enqueue()
    past = timezone.now() - timedelta(minutes=5)
    TaskRun.objects.update(
        status="running", attempt=1, started_at=past, worker_id="gone", lease_expires_at=past
    )
    drain(once=False, max_tasks=1)
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        42,
        2,
    )
    [lost] = result.errors
    assert lost.exception_class is WorkerLost
    assert result.worker_ids[0] == "gone"
