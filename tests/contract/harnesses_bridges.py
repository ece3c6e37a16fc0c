"""Contract-suite harnesses for CeleryBackend and DjangoTasksBackend (appended to HARNESSES).

- ``celery``: a real Celery worker running in this process (a thread) on Kombu's in-memory
  broker, with an in-memory result backend; draining waits until the queue is empty and the
  worker holds no request (ETA'd retries and delayed runs included).
- ``django-tasks-db``: DjangoTasksBackend on django-tasks-db; draining runs ``db_worker --batch``
  in this process until no run is ready or running.
- ``django-tasks-immediate``: DjangoTasksBackend on Django's ImmediateBackend.
"""

from __future__ import annotations

import atexit
import importlib.util
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.contract.harnesses import HARNESSES, BackendHarness, HarnessFactory

_celery: dict[str, Any] = {}
QUEUE = "contract"


def _celery_app() -> Any:
    """One Celery app and in-process worker for the whole test session."""
    if not _celery:
        from celery.contrib.testing.worker import start_worker
        from celery.signals import task_postrun

        from django_generic_tasks.backends.celery import register
        from tests.celery_app import make_app

        app = make_app("memory://", "cache+memory://", django=False, task_default_queue=QUEUE)
        register(app)
        # Without Celery's Django fix-up, nothing closes the worker thread's database
        # connections (tasks with model references open one), and the test database could not
        # be dropped at the end of the session.
        task_postrun.connect(_close_connections, weak=False)
        stack = ExitStack()
        stack.enter_context(start_worker(app, perform_ping_check=False, shutdown_timeout=30))
        atexit.register(stack.close)
        _celery["app"] = app
    return _celery["app"]


def _close_connections(sender: Any = None, **kwargs: Any) -> None:
    """After each task of the harness's app, in its worker thread (other apps' tasks: no)."""
    from django.db import connections

    if getattr(sender, "app", None) is _celery.get("app"):
        connections.close_all()


def _celery_idle(app: Any) -> bool:
    from celery.worker import state

    with app.connection_for_write() as connection:
        waiting = connection.default_channel.queue_declare(QUEUE, passive=True).message_count
    return not waiting and not state.active_requests and not state.reserved_requests


@contextmanager
def celery_harness() -> Iterator[BackendHarness]:
    """``CeleryBackend`` with a Celery worker thread on the in-memory broker."""
    from django_generic_tasks.backends.celery import CeleryBackend
    from django_generic_tasks.signals import task_enqueued, task_finished

    app = _celery_app()
    started: set[str] = set()
    finished: set[str] = set()

    def on_enqueued(request: Any, **kwargs: Any) -> None:
        started.add(request.run_id)

    def on_finished(outcome: Any, **kwargs: Any) -> None:
        if not outcome.will_retry:
            finished.add(outcome.run_id)

    def drain(timeout: float) -> None:
        # A message with an ETA sits in the worker's timer, neither queued nor reserved, so
        # "idle" alone is not enough: also wait until every started run reached its end.
        deadline = time.monotonic() + timeout
        idle_checks = 0
        while idle_checks < 5 or not started <= finished:
            idle_checks = idle_checks + 1 if _celery_idle(app) else 0
            assert time.monotonic() < deadline, "runs still unfinished"
            time.sleep(0.02)

    task_enqueued.connect(on_enqueued, weak=False)
    task_finished.connect(on_finished, weak=False)
    try:
        yield BackendHarness(
            "celery", CeleryBackend(app=app, queues={"default": QUEUE}), drain=drain
        )
    finally:
        task_enqueued.disconnect(on_enqueued)
        task_finished.disconnect(on_finished)


def _tasks_setting(**aliases: dict[str, Any]) -> Any:
    from django.test import override_settings

    from django_generic_tasks.backends.django_tasks import dj_tasks

    immediate = f"{dj_tasks.__name__}.backends.immediate.ImmediateBackend"
    return override_settings(TASKS={"default": {"BACKEND": immediate}, **aliases})


@contextmanager
def django_tasks_db_harness() -> Iterator[BackendHarness]:
    """``DjangoTasksBackend`` on django-tasks-db, drained by ``db_worker --batch`` in-process."""
    from django.core.management import call_command

    from django_generic_tasks.backends.django_tasks import DjangoTasksBackend

    def drain(timeout: float) -> None:
        from django_tasks_db.models import DBTaskResult

        deadline = time.monotonic() + timeout
        while True:
            call_command(
                "db_worker",
                "--batch",
                "--backend",
                "db",
                "--no-startup-delay",
                "--no-reload",
                verbosity=0,
            )
            if not DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).exists():
                return
            assert time.monotonic() < deadline, "runs still unfinished"
            time.sleep(0.05)

    with _tasks_setting(db={"BACKEND": "django_tasks_db.DatabaseBackend"}):
        yield BackendHarness("django-tasks-db", DjangoTasksBackend(alias="db"), drain=drain)


@contextmanager
def django_tasks_immediate_harness() -> Iterator[BackendHarness]:
    """``DjangoTasksBackend`` on Django's ``ImmediateBackend``: runs at ``start()``."""
    from django_generic_tasks.backends.django_tasks import DjangoTasksBackend

    with _tasks_setting():
        yield BackendHarness("django-tasks-immediate", DjangoTasksBackend(alias="default"))


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


_no_framework = pytest.mark.skipif(
    not (_has("django.tasks") or _has("django_tasks")),
    reason="neither django.tasks nor the django-tasks backport is installed",
)
HARNESSES.extend(
    [
        HarnessFactory(
            "celery",
            celery_harness,
            (pytest.mark.skipif(not _has("celery"), reason="celery is not installed"),),
        ),
        HarnessFactory(
            "django-tasks-db",
            django_tasks_db_harness,
            (
                _no_framework,
                pytest.mark.skipif(not _has("django_tasks_db"), reason="needs django-tasks-db"),
            ),
        ),
        HarnessFactory("django-tasks-immediate", django_tasks_immediate_harness, (_no_framework,)),
    ]
)
