"""Progress: ``report_progress()`` stored by the database worker (throttled, latest kept at the
end), shown by ``handle.refresh()``, ``GET runs/<id>`` and the admin; a signal everywhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend, ImmediateBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.exceptions import InvalidOptionError
from django_generic_tasks.execution.progress import Progress, ThrottledProgressWriter, make_progress
from django_generic_tasks.models import TaskRun
from django_generic_tasks.signals import task_progress
from django_generic_tasks.store.progress import write_progress
from django_generic_tasks.worker import Worker, WorkerOptions

ADMIN = "/admin/django_generic_tasks/taskrun/"


class CountParams(BaseModel):
    steps: int


class CountingTask(tasks.Task[CountParams]):
    """Reports progress once per step, as fast as it can."""

    name = "tests.progress.counting"

    def run(self) -> int:
        for step in range(1, self.params.steps + 1):
            self.report_progress(step, self.params.steps, f"step {step}")
        return self.params.steps


class ManualClock:
    """A clock the test moves by hand (no sleeping, no timing assertions)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        seen.append(kwargs)

    task_progress.connect(receiver)
    yield seen
    task_progress.disconnect(receiver)


def started_run() -> str:
    """A run of CountingTask claimed as running on the test connection."""
    handle = CountingTask(CountParams(steps=1)).start(backend=DatabaseBackend(), on_commit=False)
    TaskRun.objects.filter(pk=handle.id).update(status="running")
    return handle.id


def update_count(queries: CaptureQueriesContext) -> int:
    return sum(
        1 for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")
    )


@pytest.mark.django_db
def test_writes_are_throttled_per_run_and_the_latest_report_is_written_at_the_end() -> None:
    run_id = started_run()
    clock = ManualClock()
    writer = ThrottledProgressWriter(
        lambda rid, p: write_progress(store.for_connection(connection), rid, p), clock=clock
    )
    with CaptureQueriesContext(connection) as queries:
        for done in range(100):
            writer.report(run_id, make_progress(done, 100, ""))
        assert update_count(queries) == 1  # the first report; the rest are within 0.5 s
        clock.now += 0.6
        writer.report(run_id, make_progress(100, 100, "second write"))
        writer.report(run_id, make_progress(101, 200, "kept for the end"))
        assert update_count(queries) == 2
        writer.finish(run_id)
        assert update_count(queries) == 3
    progress = TaskRun.objects.get(pk=run_id).to_handle().progress
    assert progress is not None
    assert (progress.done, progress.total, progress.message) == (101, 200, "kept for the end")


@pytest.mark.django_db
def test_finish_writes_nothing_for_a_run_without_a_kept_report() -> None:
    run_id = started_run()
    writer = ThrottledProgressWriter(
        lambda rid, p: write_progress(store.for_connection(connection), rid, p)
    )
    writer.report(run_id, make_progress(1, None, ""))
    with CaptureQueriesContext(connection) as queries:
        writer.finish(run_id)
        writer.finish("another-run")
    assert update_count(queries) == 0


@pytest.mark.django_db
def test_progress_is_not_written_on_a_run_that_is_no_longer_running() -> None:
    run_id = started_run()
    TaskRun.objects.filter(pk=run_id).update(status="succeeded")
    assert write_progress(store.for_connection(connection), run_id, make_progress(1, 2, "")) == 0
    assert TaskRun.objects.get(pk=run_id).progress is None


@pytest.mark.django_db(transaction=True)
def test_the_database_worker_keeps_the_final_progress_and_refresh_shows_it() -> None:
    handle = CountingTask(CountParams(steps=500)).start(backend=DatabaseBackend())
    worker = Worker(WorkerOptions(once=True, interval=0.02, concurrency=1))
    watchdog = threading.Timer(30, worker.stop)
    watchdog.start()
    try:
        worker.run(install_signals=False)
    finally:
        watchdog.cancel()
    handle.refresh()
    assert handle.status is tasks.TaskStatus.SUCCEEDED
    assert handle.progress is not None
    assert (handle.progress.done, handle.progress.total) == (500, 500)
    assert handle.progress.message == "step 500"


@pytest.mark.django_db
def test_get_run_shows_progress(client: Client) -> None:
    run_id = started_run()
    write_progress(store.for_connection(connection), run_id, make_progress(3, 10, "pages"))
    with override_backend(DatabaseBackend()):
        body = client.get(f"/api/tasks/runs/{run_id}").json()
    assert body["status"] == "running"
    progress = body["progress"]
    assert (progress["done"], progress["total"], progress["message"]) == (3, 10, "pages")
    assert Progress.from_json({**progress, "updated_at": progress["updated_at"]}) is not None


@pytest.mark.django_db
def test_get_run_shows_null_progress_before_any_report(client: Client) -> None:
    run_id = started_run()
    with override_backend(DatabaseBackend()):
        assert client.get(f"/api/tasks/runs/{run_id}").json()["progress"] is None


@pytest.mark.django_db
def test_admin_list_and_change_pages_show_a_progress_bar(admin_client: Client) -> None:
    run_id = started_run()
    write_progress(store.for_connection(connection), run_id, make_progress(1, 4, "quarter"))
    listing = admin_client.get(ADMIN).content.decode()
    assert '<progress value="25" max="100"' in listing
    assert "quarter" in listing
    change = admin_client.get(f"{ADMIN}{run_id}/change/").content.decode()
    assert '<progress value="25" max="100"' in change


@pytest.mark.django_db
def test_admin_shows_counts_without_a_bar_when_the_total_is_unknown(admin_client: Client) -> None:
    run_id = started_run()
    write_progress(store.for_connection(connection), run_id, make_progress(7, None, "rows"))
    listing = admin_client.get(ADMIN).content.decode()
    assert "<progress" not in listing
    assert "7 rows" in listing


def test_other_backends_fire_task_progress_and_store_nothing(
    received: list[dict[str, Any]],
) -> None:
    handle = CountingTask(CountParams(steps=3)).start(backend=ImmediateBackend())
    assert [r["progress"].done for r in received] == [1, 2, 3]
    assert {r["run_id"] for r in received} == {handle.id}
    assert received[0]["sender"] is CountingTask
    assert ImmediateBackend.supports_progress is False
    assert DatabaseBackend.supports_progress is True


def test_run_called_directly_reports_to_the_signal(received: list[dict[str, Any]]) -> None:
    task = CountingTask(CountParams(steps=2))
    task.run()
    assert [r["run_id"] for r in received] == [task.context.run_id] * 2


@pytest.mark.parametrize(
    ("done", "total", "message"),
    [(-1, None, ""), ("3", None, ""), (True, None, ""), (1, -2, ""), (1, None, 5)],
)
def test_bad_progress_values_are_refused_clearly(done: Any, total: Any, message: Any) -> None:
    with pytest.raises(InvalidOptionError, match="report_progress"):
        CountingTask(CountParams(steps=1)).report_progress(done, total, message)
