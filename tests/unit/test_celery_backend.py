"""CeleryBackend with a real Celery worker running in-process on Kombu's in-memory broker.

The worker tests against Redis and RabbitMQ with a separate ``celery worker`` process are in
tests/integration/test_celery_workers.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from django_generic_tasks import conf
from django_generic_tasks.backends.celery import (
    TASK_NAME,
    CeleryBackend,
    celery_priority,
    register,
)
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import (
    ConfigurationError,
    EnqueueError,
    ResultNotAvailableError,
    RunNotFoundError,
    UnsupportedOptionError,
)
from tests import polling
from tests.celery_app import make_app
from tests.testapp import tasks as testapp
from tests.testapp.tasks import AddTask, FlakyTask


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``predicate`` briskly: the in-process worker answers fast."""
    return polling.wait_until(predicate, timeout, interval=0.02)


@pytest.fixture(scope="module")
def memory_app() -> Iterator[Celery]:
    app = make_app("memory://", "cache+memory://", django=False, task_default_queue="unit")
    register(app)
    with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
        yield app


@pytest.fixture
def backend(memory_app: Celery) -> Iterator[CeleryBackend]:
    backend = CeleryBackend(app=memory_app, queues={"default": "unit"})
    with conf.override_backend(backend):
        yield backend


def finished_or_none(backend: CeleryBackend, run_id: str) -> Any:
    """The run's handle once it finished (``None`` while unknown or unfinished)."""
    try:
        handle = backend.get_result(run_id)
    except RunNotFoundError:
        return None
    return handle if handle.status.is_finished else None


def finished(handle: Any) -> bool:
    return bool(handle.refresh().status.is_finished)


def test_started_task_runs_on_the_worker_and_its_result_is_readable(
    backend: CeleryBackend,
) -> None:
    handle = AddTask({"a": 2, "b": 3}).start()
    assert handle.status is TaskStatus.READY
    wait_until(lambda: finished(handle))
    assert handle.status is TaskStatus.SUCCEEDED
    assert handle.result == 5
    assert handle.attempts == 1
    assert ("tests.add", 5) in testapp.calls


def test_retries_follow_the_task_policy_and_reuse_the_run_id(backend: CeleryBackend) -> None:
    handle = FlakyTask({"token": "celery-retry", "failures": 2}).start()
    wait_until(lambda: finished(handle))
    assert handle.status is TaskStatus.SUCCEEDED
    assert handle.attempts == 3
    assert testapp.attempts["celery-retry"] == 3


def test_run_that_keeps_failing_ends_failed_with_the_task_error(backend: CeleryBackend) -> None:
    handle = FlakyTask({"token": "celery-fail", "failures": 99}).start()
    wait_until(lambda: finished(handle))
    assert handle.status is TaskStatus.FAILED
    assert testapp.attempts["celery-fail"] == FlakyTask.max_attempts
    assert handle.error is not None
    assert handle.error.type == "tests.testapp.tasks.Transient"
    assert handle.error.message == "failure 4"
    assert "Transient: failure 4" in handle.error.traceback


def test_discard_on_ends_the_run_discarded_without_retry(backend: CeleryBackend) -> None:
    handle = FlakyTask({"token": "discard-celery"}).start()
    wait_until(lambda: finished(handle))
    assert handle.status is TaskStatus.DISCARDED
    assert testapp.attempts["discard-celery"] == 1
    assert handle.error is not None
    assert handle.error.type == "tests.testapp.tasks.Permanent"


def test_unknown_task_fails_without_retry(backend: CeleryBackend, memory_app: Celery) -> None:
    memory_app.send_task(
        TASK_NAME,
        kwargs={"task": "tests.nope", "params": "{}", "run_id": "run-unknown"},
        task_id="run-unknown",
        queue="unit",
    )
    # Sent by hand, with no state stored first: unknown (404) until the worker stores FAILURE.
    handle = wait_until(lambda: finished_or_none(backend, "run-unknown"))
    assert handle.status is TaskStatus.FAILED
    assert handle.error is not None
    assert "tests.nope" in handle.error.message


def test_delayed_start_is_scheduled_and_runs_later(backend: CeleryBackend) -> None:
    handle = AddTask({"a": 40, "b": 2}).start(delay=timedelta(milliseconds=300))
    assert handle.status is TaskStatus.SCHEDULED
    wait_until(lambda: finished(handle))
    assert handle.result == 42


def test_start_many_sends_every_run(backend: CeleryBackend) -> None:
    handles = AddTask.start_many([{"a": n} for n in range(5)])
    for handle in handles:
        wait_until(lambda h=handle: finished(h))
    assert sorted(h.result for h in handles) == [0, 1, 2, 3, 4]


@pytest.mark.django_db
def test_start_inside_a_transaction_waits_for_commit(
    backend: CeleryBackend, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        from django.db import transaction

        with transaction.atomic():
            handle = AddTask({"a": 7}).start()
        assert handle.status is TaskStatus.PENDING
    assert len(callbacks) == 1
    callbacks[0]()
    wait_until(lambda: finished(handle))
    assert handle.result == 7


def test_key_is_refused_with_a_clear_error(backend: CeleryBackend) -> None:
    with pytest.raises(UnsupportedOptionError, match="deduplicate"):
        AddTask({"a": 1}).start(key="once")


def test_queues_map_to_celery_queues_default_included(memory_app: Celery) -> None:
    backend = CeleryBackend(app=memory_app, queues={"emails": "mail-q"})
    assert backend.celery_queue("emails") == "mail-q"
    assert backend.celery_queue("default") == "default"  # not task_default_queue ("unit")
    assert backend.celery_queue("reports") == "reports"


@pytest.mark.parametrize(
    ("priority", "rabbitmq", "redis"),
    [(-100, 0, 9), (0, 4, 5), (100, 9, 0), (50, 7, 2)],
)
def test_priority_maps_onto_the_brokers_order(priority: int, rabbitmq: int, redis: int) -> None:
    assert celery_priority(priority, lowest_first=False) == rabbitmq
    assert celery_priority(priority, lowest_first=True) == redis


def test_redis_broker_urls_use_lowest_first_priorities() -> None:
    assert CeleryBackend(app=make_app("redis://127.0.0.1:6379/15"))._lowest_first()
    assert not CeleryBackend(app=make_app("amqp://guest@127.0.0.1//"))._lowest_first()


def test_app_given_by_dotted_path_is_imported_on_first_use() -> None:
    backend = CeleryBackend(app="tests.celery_app.app")
    import tests.celery_app

    assert backend.app is tests.celery_app.app
    assert backend.check() == []
    assert "tests.celery_app.app" in repr(backend)


def test_app_path_that_does_not_import_is_a_configuration_error() -> None:
    backend = CeleryBackend(app="tests.no_such_module.app")
    with pytest.raises(ConfigurationError, match="cannot import the Celery app"):
        backend.app  # noqa: B018
    [message] = backend.check()
    assert message.id == "django_generic_tasks.E401"


def test_app_path_that_is_not_a_celery_app_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a Celery app"):
        CeleryBackend(app="tests.celery_app.make_app").app  # noqa: B018


@pytest.mark.parametrize(
    "options",
    [{"app": 42}, {"app": "tests.celery_app.app", "queues": {"default": ""}}],
)
def test_invalid_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CeleryBackend(**options)


def test_backend_setting_accepts_the_dotted_path_and_options(settings: Any) -> None:
    settings.TASKS_BACKEND = "django_generic_tasks.backends.CeleryBackend"
    settings.TASKS_BACKEND_OPTIONS = {"app": "tests.celery_app.app", "queues": {"a": "b"}}
    backend = conf.get_backend()
    assert isinstance(backend, CeleryBackend)
    assert backend.queues == {"a": "b"}


def test_without_result_backend_results_are_not_available() -> None:
    backend = CeleryBackend(app=make_app("memory://"))
    assert not backend.supports_results
    with pytest.raises(ResultNotAvailableError):
        backend.get_result("any")


def test_unreachable_broker_is_an_enqueue_error_and_nothing_is_lost() -> None:
    app = make_app("redis://127.0.0.1:1/0", task_publish_retry=False, broker_connection_timeout=0.5)
    with (
        conf.override_backend(CeleryBackend(app=app)),
        pytest.raises(EnqueueError, match=r"could not send task tests\.add"),
    ):
        AddTask({"a": 1}).start()


def test_tasks_module_registers_the_generic_task_when_celery_is_loaded() -> None:
    sys.modules.pop("django_generic_tasks.tasks", None)
    import django_generic_tasks.tasks  # noqa: F401

    app = Celery("fresh", set_as_current=False)
    assert TASK_NAME in app.tasks


def test_redis_visibility_timeout_shorter_than_a_retry_backoff_is_warned() -> None:
    app = make_app("redis://127.0.0.1:6379/15")
    app.conf.broker_transport_options = {"visibility_timeout": FlakyTask.backoff_max}
    [message] = [m for m in CeleryBackend(app=app).check() if m.id.endswith("W401")]
    assert message.id == "django_generic_tasks.W401"
    assert "visibility_timeout" in message.msg


def test_long_redis_visibility_timeout_and_rabbitmq_pass_the_check() -> None:
    app = make_app("redis://127.0.0.1:6379/15")
    app.conf.broker_transport_options = {"visibility_timeout": 43200}
    for backend in CeleryBackend(app=app), CeleryBackend(app=make_app("amqp://guest@127.0.0.1//")):
        assert [m.id for m in backend.check() if m.id.endswith("W401")] == []
