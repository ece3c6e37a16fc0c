"""Attack (issue 10, item 12): ``GET runs/<id>`` on CeleryBackend must show only runs started
through this library. A real Redis result backend (its own database number) holds a foreign
task's result, a JSON list, garbage and a forged failure; each reads as "no such run" (404),
never as data and never as a 500. Our own runs, run by an in-process worker, stay readable.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.test import Client

from django_generic_tasks import conf
from django_generic_tasks.backends.celery import CeleryBackend, register
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import RunNotFoundError
from tests import polling
from tests.celery_app import make_app
from tests.conftest import need_service
from tests.testapp.tasks import AddTask, FlakyTask

RESULTS = "redis://127.0.0.1:6379/9"  # a database number of this test module's own

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        need_service("Redis is not reachable on 127.0.0.1:6379")
    app = make_app(
        "memory://", RESULTS, django=False, task_default_queue=f"foreign-{uuid.uuid4().hex[:8]}"
    )
    register(app)
    with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
        yield app


@pytest.fixture
def backend(app: Celery) -> Iterator[CeleryBackend]:
    backend = CeleryBackend(app=app, queues={"default": app.conf.task_default_queue})
    with conf.override_backend(backend):
        yield backend


def store_raw(app: Celery, task_id: str, payload: bytes) -> None:
    """Write ``payload`` where Celery's Redis result backend keeps ``task_id``'s result."""
    backend: Any = app.backend
    backend.client.set(backend.get_key_for_task(task_id), payload)


def assert_not_found(backend: CeleryBackend, run_id: str) -> None:
    with pytest.raises(RunNotFoundError):
        backend.get_result(run_id)
    response = Client().get(f"/api/tasks/runs/{run_id}")
    assert response.status_code == 404, response.content
    assert b"ssn" not in response.content


def test_a_foreign_celery_result_is_not_readable_as_a_run(
    app: Celery, backend: CeleryBackend
) -> None:
    foreign_id = f"invoice-job-{uuid.uuid4().hex[:6]}"
    app.backend.store_result(foreign_id, {"ssn": "078-05-1120"}, "SUCCESS")
    assert_not_found(backend, foreign_id)


def test_a_foreign_result_that_mimics_our_summary_for_another_run_is_not_readable(
    app: Celery, backend: CeleryBackend
) -> None:
    foreign_id = uuid.uuid4().hex
    forged = {"django_generic_tasks": 1, "run_id": "another", "status": "succeeded"}
    app.backend.store_result(foreign_id, json.dumps({**forged, "result": {"ssn": 1}}), "SUCCESS")
    assert_not_found(backend, foreign_id)


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2, 3]",
        b'{"status": "SUCCESS", "result": [1, 2, 3]}',
        b'{"status": "SUCCESS", "result": "[\\"not\\", \\"a summary\\"]"}',
        b"\x00\xffnot json at all",
        b'{"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["ssn"]}}',
        b'{"status": "FAILURE", "result": {"exc_module": "os", "exc_type": "system"}}',
        b'{"status": "FAILURE", "result": "garbage"}',
        b'{"status": "PROGRESS", "result": {"ssn": "078-05-1120"}}',
        b'{"status": "STARTED", "result": {"pid": 1}, "name": "billing.export"}',
        b'{"status": "SUCCESS", "result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=[
        "json-list",
        "result-list",
        "json-text-list",
        "garbage",
        "foreign-failure",
        "forged-exception-class",
        "failure-garbage",
        "custom-state",
        "foreign-started",
        "deeply-nested",
    ],
)
def test_stored_results_that_are_not_our_runs_are_404_never_500(
    app: Celery, backend: CeleryBackend, payload: bytes
) -> None:
    run_id = uuid.uuid4().hex
    store_raw(app, run_id, payload)
    assert_not_found(backend, run_id)


def test_runs_started_through_the_library_stay_readable(backend: CeleryBackend) -> None:
    ok = AddTask({"a": 2, "b": 3}).start()
    bad = FlakyTask({"token": f"foreign-{uuid.uuid4().hex}", "failures": 99}).start()
    polling.wait_until(lambda: ok.refresh().status.is_finished, 30, interval=0.05)
    polling.wait_until(lambda: bad.refresh().status.is_finished, 60, interval=0.05)
    assert (ok.status, ok.result, ok.name) == (TaskStatus.SUCCEEDED, 5, "tests.add")
    assert bad.status is TaskStatus.FAILED
    assert bad.error is not None
    assert bad.error.type == "tests.testapp.tasks.Transient"
    response = Client().get(f"/api/tasks/runs/{ok.id}")
    assert response.status_code == 200
    assert response.json()["result"] == 5
