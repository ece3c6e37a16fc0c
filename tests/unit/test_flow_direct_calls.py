"""A direct HTTP call (``POST <task>``, not a push queue's delivery) of a task with limits is
admitted through them, like a run a worker claims: through the database with
``DatabaseBackend``, in this process with the in-process backends, refused (501) elsewhere;
no slot or turn free: 429 with ``Retry-After``. Hammered from many threads at once, the
bodies never run over the limit."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from django_generic_tasks.backends import DatabaseBackend, ImmediateBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.models import TaskRun
from tests.contract.flow_tasks import most_at_once
from tests.contract.tasks import entries

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.flow_urls"),
]

LIMITED = "/flow/tasks/contract.limited"
RATED = "/flow/tasks/contract.rated"


def _hammer(url: str, bodies: list[dict[str, Any]], threads: int, pause: float = 0.0) -> list[Any]:
    """POST every body, from ``threads`` threads at once (each ``pause`` seconds between its
    calls); the responses."""
    from django.db import connections

    pending = iter(bodies)
    lock = threading.Lock()
    answers: list[Any] = []

    def call() -> None:
        client = Client()
        try:
            while True:
                with lock:
                    body = next(pending, None)
                if body is None:
                    return
                answer = client.post(url, body, content_type="application/json")
                with lock:
                    answers.append(answer)
                time.sleep(pause)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers)
    return answers


@pytest.fixture(params=["database", "in-process"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    chosen = DatabaseBackend() if request.param == "database" else ImmediateBackend()
    with override_backend(chosen):
        yield chosen


def test_hammering_a_limited_task_never_runs_it_over_its_limit(backend: Any) -> None:
    token = uuid.uuid4().hex
    answers = _hammer(LIMITED, [{"token": token, "seconds": 0.05}] * 24, threads=6)
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == len(entries(token, "end")) >= 1
    assert most_at_once(token) == 1  # concurrency_limit = 1
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer["Retry-After"]) >= 1
            assert "concurrency limit 1" in answer.json()["detail"]
    assert not TaskRun.objects.filter(queue="http").exists()  # every slot given back


def test_keys_of_direct_calls_are_limited_apart(backend: Any) -> None:
    token = uuid.uuid4().hex
    bodies = [{"token": token, "key": key, "seconds": 0.3} for key in ("a", "b")]
    answers = _hammer(LIMITED, bodies, threads=2)
    assert [answer.status_code for answer in answers] == [200, 200]


def test_hammering_a_rated_task_never_starts_it_faster_than_its_rate(backend: Any) -> None:
    token = uuid.uuid4().hex
    answers = _hammer(RATED, [{"token": token}] * 200, threads=8, pause=0.04)  # about 1 s
    starts = sorted(entry["at"] for entry in entries(token, "start"))
    assert len(starts) == sum(1 for answer in answers if answer.status_code == 200) >= 3
    # rate_limit = "10/s": the calls are admitted 0.1 s apart at least; each body starts right
    # after its admission (a few ms later on a busy machine), never ahead of the rate.
    assert starts[-1] - starts[0] >= (len(starts) - 1) * 0.1 - 0.05
    for first in starts:
        assert sum(1 for at in starts if first <= at < first + 0.5) <= 6
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, "calls at once must meet the rate limit"
    assert all(int(answer["Retry-After"]) >= 1 for answer in refused)


def test_a_backend_that_keeps_no_limits_refuses_the_direct_call() -> None:
    pytest.importorskip("google.cloud.tasks_v2")
    from django_generic_tasks.backends import CloudTasksBackend

    cloud = CloudTasksBackend(
        project="p", location="l", queue="q", base_url="https://example.com/tasks/"
    )
    token = uuid.uuid4().hex
    with override_backend(cloud):
        answer = Client().post(LIMITED, {"token": token}, content_type="application/json")
    assert answer.status_code == 501
    assert "cannot honour" in answer.json()["detail"]
    assert entries(token) == []


def test_the_openapi_document_lists_the_refusals_of_a_limited_task() -> None:
    from tests.flow_urls import api

    paths = api.get_openapi_schema()["paths"]
    limited = paths["/flow/tasks/contract.limited"]["post"]["responses"]
    assert {"429", "501"} <= set(map(str, limited))
    unlimited = paths["/flow/tasks/contract.snooze"]["post"]["responses"]
    assert "429" not in set(map(str, unlimited))
