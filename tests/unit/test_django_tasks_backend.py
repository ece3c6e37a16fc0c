"""DjangoTasksBackend on Django's ImmediateBackend and DummyBackend, and on django-tasks-db
drained in-process with its ``db_worker --batch``.

The test with ``db_worker`` as a separate process is in
tests/integration/test_django_tasks_worker.py.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings

from django_generic_tasks import conf
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import (
    ConfigurationError,
    EnqueueError,
    ResultNotAvailableError,
    RunFailedError,
    UnsupportedOptionError,
)
from tests.testapp import tasks as testapp
from tests.testapp.tasks import AddTask, FlakyTask

try:
    importlib.import_module("django.tasks")
except ImportError:
    try:
        importlib.import_module("django_tasks")
    except ImportError:
        pytest.skip(
            "neither django.tasks (Django >= 6.0) nor the django-tasks backport is installed",
            allow_module_level=True,
        )

from django_generic_tasks.backends.django_tasks import (
    BridgedRunFailed,
    DjangoTaskHandle,
    DjangoTasksBackend,
    dj_tasks,
)

FRAMEWORK = dj_tasks.__name__
HAS_DB = importlib.util.find_spec("django_tasks_db") is not None
TASKS = {
    "default": {"BACKEND": f"{FRAMEWORK}.backends.immediate.ImmediateBackend"},
    "dummy": {
        "BACKEND": f"{FRAMEWORK}.backends.dummy.DummyBackend",
        "QUEUES": ["default", "emails"],
    },
    **({"db": {"BACKEND": "django_tasks_db.DatabaseBackend"}} if HAS_DB else {}),
}


@pytest.fixture(autouse=True)
def _tasks_setting() -> Iterator[None]:
    with override_settings(TASKS=TASKS):
        yield


def use(alias: str) -> Any:
    return conf.override_backend(DjangoTasksBackend(alias=alias))


def test_immediate_backend_runs_the_task_and_the_handle_has_the_result() -> None:
    with use("default"):
        handle = AddTask({"a": 2, "b": 3}).start()
    assert isinstance(handle, DjangoTaskHandle)
    assert (handle.status, handle.result, handle.attempts) == (TaskStatus.SUCCEEDED, 5, 1)
    assert str(handle.task_result.status) == "SUCCESSFUL"
    assert ("tests.add", 5) in testapp.calls


def test_immediate_backend_retries_follow_the_task_policy() -> None:
    with use("default"):
        handle = FlakyTask({"token": "dt-retry", "failures": 2}).start()
    assert (handle.status, handle.attempts) == (TaskStatus.SUCCEEDED, 3)
    assert testapp.attempts["dt-retry"] == 3


def test_run_that_keeps_failing_is_failed_with_the_task_error_as_structured_fields() -> None:
    with use("default"):
        handle = FlakyTask({"token": "dt-fail", "failures": 99}).start()
    assert handle.status is TaskStatus.FAILED
    assert testapp.attempts["dt-fail"] == FlakyTask.max_attempts
    assert handle.error is not None
    assert (handle.error.type, handle.error.message) == (
        "tests.testapp.tasks.Transient",
        "failure 4",
    )
    assert "Transient: failure 4" in handle.error.traceback
    assert handle.attempts == FlakyTask.max_attempts


def test_a_run_that_failed_for_good_is_a_failed_django_tasks_result_with_its_error() -> None:
    # issue 25, item 4: it was a SUCCESSFUL result whose summary said "failed".
    with use("default"):
        handle = FlakyTask({"token": "dt-failed", "failures": 99}).start()
    result = handle.task_result
    assert str(result.status) == "FAILED"
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    error = result.errors[-1]
    assert error.exception_class is BridgedRunFailed
    assert issubclass(error.exception_class, RunFailedError)
    assert "tests.testapp.tasks.Transient" in error.traceback
    assert "failure 4" in error.traceback


def test_a_discarded_run_stays_a_successful_django_tasks_result() -> None:
    with use("default"):
        handle = FlakyTask({"token": "discard-dt2"}).start()
    assert handle.status is TaskStatus.DISCARDED
    assert str(handle.task_result.status) == "SUCCESSFUL"


def test_discard_on_ends_the_run_discarded() -> None:
    with use("default"):
        handle = FlakyTask({"token": "discard-dt"}).start()
    assert handle.status is TaskStatus.DISCARDED
    assert testapp.attempts["discard-dt"] == 1


def test_unknown_task_fails_without_retry() -> None:
    task = DjangoTasksBackend(alias="default")
    from django_generic_tasks.core.enqueue import EnqueueRequest

    request = EnqueueRequest("run-x", "tests.nope", "{}", "default", 0, None, None, 3, None)
    handle = task.enqueue(request)
    assert handle.status is TaskStatus.FAILED
    assert handle.error is not None
    assert "tests.nope" in handle.error.message


def test_capabilities_come_from_the_django_tasks_backend() -> None:
    immediate, dummy = DjangoTasksBackend(alias="default"), DjangoTasksBackend(alias="dummy")
    assert (immediate.supports_defer, immediate.supports_results) == (False, False)
    assert (dummy.supports_defer, dummy.supports_priority) == (True, True)
    assert not dummy.supports_key
    with use("default"), pytest.raises(UnsupportedOptionError, match="later"):
        AddTask({"a": 1}).start(delay=timedelta(seconds=1))
    with use("default"), pytest.raises(UnsupportedOptionError, match="deduplicate"):
        AddTask({"a": 1}).start(key="k")


def test_dummy_backend_receives_run_after_priority_and_queue() -> None:
    with use("dummy"):
        handle = AddTask({"a": 1}).start(delay=timedelta(minutes=5), priority=7, queue="emails")
    assert handle.status is TaskStatus.SCHEDULED
    [stored] = dj_tasks.task_backends["dummy"].results
    assert stored.task.priority == 7
    assert stored.task.queue_name == "emails"
    assert stored.task.run_after is not None
    assert stored.task.module_path == "django_generic_tasks.backends.django_tasks.run_generic_task"
    assert stored.args[:3] == ["tests.add", '{"a":1,"b":0}', handle.id]
    with pytest.raises(ResultNotAvailableError):
        handle.refresh()


def test_queue_unknown_to_the_django_tasks_backend_is_an_enqueue_error() -> None:
    with use("dummy"), pytest.raises(EnqueueError, match="not valid"):
        AddTask({"a": 1}).start(queue="reports")
    assert dj_tasks.task_backends["dummy"].results == []


def test_missing_alias_is_a_configuration_error_and_a_check() -> None:
    backend = DjangoTasksBackend(alias="nope")
    with pytest.raises(ConfigurationError, match="nope"):
        backend.supports_defer  # noqa: B018
    [message] = backend.check()
    assert message.id == "django_generic_tasks.E411"
    assert DjangoTasksBackend(alias="dummy").check() == []
    assert "nope" in repr(backend)


def test_invalid_alias_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        DjangoTasksBackend(alias="")


def test_backend_setting_accepts_the_dotted_path_and_alias(settings: Any) -> None:
    settings.TASKS_BACKEND = "django_generic_tasks.backends.DjangoTasksBackend"
    settings.TASKS_BACKEND_OPTIONS = {"alias": "dummy"}
    backend = conf.get_backend()
    assert isinstance(backend, DjangoTasksBackend)
    assert backend.alias == "dummy"


def test_start_inside_a_transaction_waits_for_commit(
    db: None, django_capture_on_commit_callbacks: Any
) -> None:
    from django.db import transaction

    with (
        use("default"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        handle = AddTask({"a": 9}).start()
        assert handle.status is TaskStatus.PENDING
        assert testapp.calls == []
    assert len(callbacks) == 1
    assert handle.status is TaskStatus.SUCCEEDED
    assert ("tests.add", 9) in testapp.calls


def drain(alias: str = "db") -> None:
    """Run django-tasks-db's worker in this process until the queue is empty."""
    from django.core.management import call_command

    call_command(
        "db_worker", "--batch", "--backend", alias, "--no-startup-delay", "--no-reload", verbosity=0
    )


needs_db = pytest.mark.skipif(not HAS_DB, reason="django-tasks-db is not installed")


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-process worker closes "old" connections like a request would; in a test that
    # would close the connection holding the test's transaction (PostgreSQL).
    if HAS_DB:
        monkeypatch.setattr(
            "django_tasks_db.management.commands.db_worker.close_old_connections", lambda: None
        )


@needs_db
@pytest.mark.django_db
def test_django_tasks_db_runs_retries_and_refresh_follows_them() -> None:
    with use("db"):
        handle = FlakyTask({"token": "db-retry", "failures": 2}).start()
    assert handle.status is TaskStatus.READY
    deadline = time.monotonic() + 20
    while not handle.refresh().status.is_finished and time.monotonic() < deadline:
        drain()
        time.sleep(0.02)
    assert (handle.status, handle.result, handle.attempts) == (
        TaskStatus.SUCCEEDED,
        "db-retry",
        3,
    )
    fresh = DjangoTasksBackend(alias="db").get_result(handle.task_result.id)
    assert fresh.status is TaskStatus.SUCCEEDED


@needs_db
@pytest.mark.django_db
def test_django_tasks_db_final_failure_is_readable_through_the_handle() -> None:
    with use("db"):
        handle = FlakyTask({"token": "db-fail", "failures": 99}).start()
    deadline = time.monotonic() + 20
    while not handle.refresh().status.is_finished and time.monotonic() < deadline:
        drain()
        time.sleep(0.02)
    assert handle.status is TaskStatus.FAILED
    assert handle.error is not None
    assert handle.error.type == "tests.testapp.tasks.Transient"
    assert handle.error.message == "failure 4"
    assert testapp.attempts["db-fail"] == FlakyTask.max_attempts
    assert str(handle.task_result.status) == "FAILED"  # django-tasks-db's own row says so
    fresh = dj_tasks.task_backends["db"].get_result(handle.task_result.id)
    assert str(fresh.status) == "FAILED"
    assert fresh.errors[-1].exception_class is BridgedRunFailed


@needs_db
@pytest.mark.django_db
def test_django_tasks_db_delayed_run_waits_for_run_after() -> None:
    with use("db"):
        handle = AddTask({"a": 1}).start(delay=timedelta(hours=1), priority=5)
    assert handle.status is TaskStatus.SCHEDULED
    drain()
    assert handle.refresh().status is TaskStatus.READY
    assert testapp.calls == []
