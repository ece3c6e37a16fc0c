"""Runs on a real ``celery worker`` on Redis are visible by their own task names, report their
states honestly (scheduled, running, unknown), and the worker knows every task by name.

Redis databases 7 (broker) and 6 (results) belong to this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from django_generic_tasks import conf
from django_generic_tasks.backends.celery import TASK_NAME, CeleryBackend
from django_generic_tasks.core.status import TaskStatus, new_run_id
from django_generic_tasks.exceptions import RunNotFoundError
from tests.celery_app import make_app
from tests.conftest import need_service
from tests.integration.test_celery_workers import CELERY, ROOT, CeleryWorker, reachable
from tests.polling import wait_until
from tests.workerapp.tasks import HoldTask, RecordTask, events, release

pytestmark = pytest.mark.slow

BROKER = "redis://127.0.0.1:6379/7"
RESULTS = "redis://127.0.0.1:6379/6"


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryWorker]:
    if not reachable(6379):
        need_service("Redis is not reachable on 127.0.0.1:6379")
    store = tmp_path_factory.mktemp("celery-names")
    previous = os.environ.get("TASKS_TEST_STORE")
    os.environ["TASKS_TEST_STORE"] = str(store)
    queue = f"dgt-names-{uuid.uuid4().hex[:10]}"
    worker = CeleryWorker(BROKER, queue, store, store / "worker.log", CELERY_RESULT_BACKEND=RESULTS)
    worker.start()
    yield worker
    worker.stop()
    if previous is None:
        os.environ.pop("TASKS_TEST_STORE", None)
    else:
        os.environ["TASKS_TEST_STORE"] = previous


@pytest.fixture
def backend(worker: CeleryWorker) -> Iterator[CeleryBackend]:
    backend = CeleryBackend(app=make_app(BROKER, RESULTS), queues={"default": worker.queue})
    with conf.override_backend(backend):
        yield backend


def test_celery_inspect_lists_each_task_under_its_own_name(worker: CeleryWorker) -> None:
    env = {**os.environ, "CELERY_BROKER_URL": BROKER, "PYTHONPATH": str(ROOT)}
    command = [CELERY, "-A", "tests.celery_app", "inspect", "registered", "--json"]
    output = subprocess.run(
        [*command, "--timeout", "10"], cwd=ROOT, env=env, capture_output=True, check=True
    ).stdout
    replies = json.loads(output)
    [registered] = [names for node, names in replies.items() if node.startswith(worker.queue)]
    assert {RecordTask.name, HoldTask.name, TASK_NAME} <= set(registered)


def test_worker_log_names_the_run_by_its_task(worker: CeleryWorker, backend: CeleryBackend) -> None:
    token = uuid.uuid4().hex
    handle = RecordTask({"token": token}).start()
    wait_until(lambda: handle.refresh().status.is_finished)
    assert handle.status is TaskStatus.SUCCEEDED
    log = worker.log.read_text()
    assert f"Task {RecordTask.name}[{handle.id}] succeeded" in log


def test_started_run_reads_running_with_its_name(backend: CeleryBackend) -> None:
    token = uuid.uuid4().hex
    handle = HoldTask({"token": token}).start()
    try:
        wait_until(lambda: events(token))
        fresh = backend.get_result(handle.id)
        assert (fresh.status, fresh.name) == (TaskStatus.RUNNING, HoldTask.name)
    finally:
        release(token)
    wait_until(lambda: handle.refresh().status.is_finished)
    assert (handle.status, handle.result) == (TaskStatus.SUCCEEDED, token)


def test_delayed_run_reads_scheduled_until_it_starts(backend: CeleryBackend) -> None:
    token = uuid.uuid4().hex
    handle = RecordTask({"token": token}).start(delay=timedelta(seconds=2))
    fresh = backend.get_result(handle.id)
    assert (fresh.status, fresh.name) == (TaskStatus.SCHEDULED, RecordTask.name)
    wait_until(lambda: handle.refresh().status.is_finished)
    assert handle.status is TaskStatus.SUCCEEDED


def test_an_id_that_is_not_a_run_of_ours_is_not_found(backend: CeleryBackend) -> None:
    with pytest.raises(RunNotFoundError):
        backend.get_result(new_run_id())


def test_unknown_id_answers_404_on_the_runs_endpoint(backend: CeleryBackend) -> None:
    from django.test import Client

    assert Client().get(f"/api/tasks/runs/{new_run_id()}").status_code == 404
