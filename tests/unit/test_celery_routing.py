"""CeleryBackend's queue mapping and its checks (W402, E402), and one Celery task per task
class, on Kombu's in-memory broker (no worker needed)."""

from __future__ import annotations

import pytest
from celery import Celery
from kombu import Queue

from django_generic_tasks.backends.celery import TASK_NAME, CeleryBackend, register
from django_generic_tasks.backends.celery_checks import known_queues
from django_generic_tasks.check_ids import CheckId
from django_generic_tasks.core.enqueue import EnqueueRequest
from tests.celery_app import make_app
from tests.testapp.tasks import AddTask


def ids(backend: CeleryBackend) -> list[str]:
    return [message.id for message in backend.check()]


@pytest.fixture
def app() -> Celery:
    return make_app("memory://", django=False, task_default_queue="celery")


def test_default_queue_sent_to_celerys_default_queue_is_warned(app: Celery) -> None:
    messages = [m for m in CeleryBackend(app=app).check() if m.id == CheckId.CELERY_QUEUE_UNROUTED]
    [default] = [m for m in messages if "'default'" in m.msg and "from task queue" in m.msg]
    assert AddTask.name in default.msg
    assert "-Q default" in default.hint


def test_queue_named_by_task_queues_routes_or_the_default_queue_is_not_warned(
    app: Celery,
) -> None:
    from django_generic_tasks.core.registry import registry

    used = sorted({task.queue for task in registry})
    app.conf.task_queues = [Queue(used[0])]
    app.conf.task_routes = {"some.task": {"queue": "x"}, **{f"t{i}": q for i, q in enumerate(used)}}
    assert known_queues(app) >= {"celery", "x", *used}
    assert CheckId.CELERY_QUEUE_UNROUTED not in ids(CeleryBackend(app=app))


def test_mapping_a_queue_onto_a_known_celery_queue_silences_the_warning(app: Celery) -> None:
    from django_generic_tasks.core.registry import registry

    mapping = {task.queue: "celery" for task in registry}
    assert CheckId.CELERY_QUEUE_UNROUTED not in ids(CeleryBackend(app=app, queues=mapping))


def someone_elses_task() -> None:
    """A plain Celery task body."""


def test_task_name_taken_by_another_celery_task_is_an_error(app: Celery) -> None:
    app.task(name=AddTask.name, lazy=False, shared=False)(
        someone_elses_task
    )  # registered before ours
    backend = CeleryBackend(app=app, queues={})
    [error] = [m for m in backend.check() if m.id == CheckId.CELERY_TASK_NAME_TAKEN]
    assert AddTask.name in error.msg


def test_every_registered_task_is_a_celery_task_of_its_own_name() -> None:
    app = make_app("memory://", django=False)
    register(app)
    assert AddTask.name in app.tasks
    ours, generic = app.tasks[AddTask.name], app.tasks[TASK_NAME]
    assert (ours.dgt_bridge, ours.acks_late, ours.reject_on_worker_lost) == (True, True, True)
    assert ours.__wrapped__.__code__ is generic.__wrapped__.__code__  # one body, one path


def test_a_task_class_celery_does_not_know_yet_is_registered_when_sent() -> None:
    app = make_app("memory://", django=False)
    app.finalize()
    del app.tasks[AddTask.name]
    CeleryBackend(app=app)._send(EnqueueRequest.for_task(AddTask({"a": 1})))
    assert AddTask.name in app.tasks


def test_without_store_waiting_a_waiting_run_reads_ready_and_a_delayed_one_scheduled() -> None:
    from datetime import timedelta

    from django_generic_tasks.core.status import TaskStatus, new_run_id
    from django_generic_tasks.exceptions import RunNotFoundError

    app = make_app("memory://", "cache+memory://", django=False)
    default, lean = CeleryBackend(app=app), CeleryBackend(app=app, store_waiting=False)
    waiting = AddTask({"a": 1}).start(backend=lean)
    delayed = AddTask({"a": 1}).start(backend=lean, delay=timedelta(hours=1))
    assert lean.get_result(waiting.id).status is TaskStatus.READY
    assert (lean.get_result(delayed.id).status, lean.get_result(delayed.id).name) == (
        TaskStatus.SCHEDULED,
        AddTask.name,
    )
    assert lean.get_result(new_run_id()).status is TaskStatus.READY  # Celery cannot tell
    queued = AddTask({"a": 1}).start(backend=default)
    assert (default.get_result(queued.id).status, default.get_result(queued.id).name) == (
        TaskStatus.READY,
        AddTask.name,
    )
    with pytest.raises(RunNotFoundError):
        default.get_result(new_run_id())
