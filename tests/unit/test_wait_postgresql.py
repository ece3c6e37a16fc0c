"""``handle.wait()`` on PostgreSQL wakes on ``LISTEN/NOTIFY``: within 50 ms of the finish, with
no polling in between (the queries are counted), and through a dropped listen connection.

Runs in the PostgreSQL pass of ``scripts/test.sh`` (``DATABASE_URL=postgres://...``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.execution import Attempt, execute
from django_generic_tasks.store.finish_notices import CHANNEL, listener_for
from django_generic_tasks.store.rows import Finished

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (LISTEN/NOTIFY): runs in the PostgreSQL pass")


class SumParams(BaseModel):
    numbers: list[int]


class SumTask(tasks.Task[SumParams, int]):
    """Adds its numbers up; fails on an empty list."""

    name = "tests.wait_pg.sum"

    def run(self) -> int:
        if not self.params.numbers:
            raise ValueError("nothing to add")
        return sum(self.params.numbers)


def finish_all(delay: float, finished_at: list[float]) -> threading.Thread:
    """After ``delay`` s, claim every due run and finish it in one statement (as a worker's
    batch does) on another connection; record when that commit returned."""

    def target() -> None:
        time.sleep(delay)
        try:
            runs = store.for_connection(connections["default"])
            now = datetime.now(UTC)
            claimed = runs.queue.claim("finisher", ["default"], 10_000, 60, now)
            items = [
                Finished(
                    run,
                    execute(
                        Attempt(
                            task_name=run.task_name,
                            params=run.params,
                            run_id=run.id,
                            attempt=run.attempt,
                        )
                    ),
                    now,
                )
                for run in claimed
            ]
            runs.queue.finish("finisher", items)
            finished_at.append(time.monotonic())
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


@pytest.fixture
def backend() -> DatabaseBackend:
    return DatabaseBackend()


def test_wait_wakes_within_50_ms_of_the_finish_without_polling(backend: DatabaseBackend) -> None:
    handle = SumTask(SumParams(numbers=[1, 2, 3])).start(backend=backend)
    finished_at: list[float] = []
    finisher = finish_all(1.0, finished_at)
    with CaptureQueriesContext(connection) as queries:
        assert handle.wait(timeout=30) == 6
    woke_at = time.monotonic()
    finisher.join()
    assert woke_at - finished_at[0] < 0.05
    # The mark (awaited_at), one read before waiting, one after the notice: nothing while the
    # run was running.
    assert len(queries) == 3, [q["sql"] for q in queries]
    assert "awaited_at" in queries[0]["sql"]


def test_wait_times_out_reading_the_run_only_before_waiting_and_at_the_deadline(
    backend: DatabaseBackend,
) -> None:
    handle = SumTask(SumParams(numbers=[1])).start(backend=backend)
    with CaptureQueriesContext(connection) as queries, pytest.raises(TimeoutError):
        handle.wait(timeout=0.5)
    assert len(queries) == 3  # the mark, a read before waiting and one at the deadline
    assert handle.status is TaskStatus.READY


def test_await_result_wakes_on_the_finish_notice(backend: DatabaseBackend) -> None:
    handle = SumTask(SumParams(numbers=[1, 2, 3])).start(backend=backend)
    finished_at: list[float] = []
    finisher = finish_all(0.5, finished_at)
    assert asyncio.run(handle.await_result(timeout=30)) == 6
    woke_at = time.monotonic()
    finisher.join()
    # Without the notice, the await would read the run again only after NOTICE_RECHECK (10 s).
    assert woke_at - finished_at[0] < 1.0
    assert listener_for("default").waiting() == 0


def test_wait_on_a_failed_run_raises_run_failed_error(backend: DatabaseBackend) -> None:
    handle = SumTask(SumParams(numbers=[])).start(backend=backend)
    finish_all(0.2, []).join()
    with pytest.raises(tasks.RunFailedError, match="nothing to add") as caught:
        handle.wait(timeout=10)
    assert caught.value.status is TaskStatus.FAILED


def test_waiters_of_runs_in_one_large_batch_all_wake(backend: DatabaseBackend) -> None:
    handles = SumTask.start_many([SumParams(numbers=[i]) for i in range(500)], backend=backend)
    watched = [handles[0], handles[250], handles[-1]]
    results: dict[str, int] = {}

    def wait_for(handle: tasks.TaskHandle[int]) -> None:
        try:
            results[handle.id] = handle.wait(timeout=30)
        finally:
            connections.close_all()

    waiters = [threading.Thread(target=wait_for, args=(h,)) for h in watched]
    for waiter in waiters:
        waiter.start()
    finish_all(0.5, []).join()
    for waiter in waiters:
        waiter.join(timeout=30)
    assert results == {h.id: handles.index(h) for h in watched}


def test_cancelling_a_waiting_run_wakes_its_waiter(backend: DatabaseBackend) -> None:
    handle = SumTask(SumParams(numbers=[1])).start(backend=backend)
    threading.Timer(0.3, lambda: (backend.cancel_run(handle.id), connections.close_all())).start()
    began = time.monotonic()
    with pytest.raises(tasks.RunFailedError) as caught:
        handle.wait(timeout=30)
    assert caught.value.status is TaskStatus.CANCELLED
    assert time.monotonic() - began < 5  # well before the 10 s safety re-read


def test_waiter_still_wakes_when_the_listen_connection_is_killed(
    backend: DatabaseBackend,
) -> None:
    handle = SumTask(SumParams(numbers=[4])).start(backend=backend)
    result: list[int] = []

    def wait() -> None:
        try:
            result.append(handle.wait(timeout=30))
        finally:
            connections.close_all()

    waiter = threading.Thread(target=wait)
    waiter.start()
    listener = listener_for("default")
    deadline = time.monotonic() + 5
    while listener.waiting() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN django_generic_tasks_finished%%' AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    finish_all(0.5, []).join()
    waiter.join(timeout=30)
    assert result == [4]


def test_runs_nobody_waits_for_send_no_notice(backend: DatabaseBackend) -> None:
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as listening:
        listening.execute(f"LISTEN {CHANNEL}")
        awaited = SumTask(SumParams(numbers=[1])).start(backend=backend)
        SumTask.start_many([SumParams(numbers=[i]) for i in range(20)], backend=backend)
        waiter = threading.Thread(target=lambda: (awaited.wait(30), connections.close_all()))
        waiter.start()
        while listener_for("default").waiting() == 0:
            time.sleep(0.01)
        finish_all(0.1, []).join()
        waiter.join(30)
        payloads = [n.payload for n in listening.notifies(timeout=1.0)]
    assert payloads == [awaited.id]
