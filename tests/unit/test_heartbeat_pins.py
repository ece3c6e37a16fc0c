"""What a mutation audit found unpinned in the worker's heartbeat: it cancels only runs whose
cancel was asked, and a run count it failed to write is written again before the next beat.

The heartbeat runs as the worker runs it (its own thread and connection), on a worker that is
not claiming: the test holds the runs for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import DatabaseError, connection

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.execution import cancellation
from django_generic_tasks.models import TaskRun, WorkerHeartbeat
from django_generic_tasks.worker import Worker, WorkerOptions
from django_generic_tasks.worker.heartbeat import Heartbeat
from tests.polling import wait_until
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def beating(worker: Worker) -> Iterator[None]:
    """The worker's heartbeat thread, running until the block ends."""
    heartbeat = Heartbeat(worker)
    heartbeat.start()
    try:
        yield
    finally:
        worker._halt.set()
        heartbeat.join(30)
    assert not heartbeat.is_alive()


def test_the_heartbeat_never_cancels_a_run_nobody_cancelled() -> None:
    worker = Worker(WorkerOptions(lease=0.3))  # a beat every 0.1 s
    for a in range(2):
        AddTask({"a": a}).start(backend=DatabaseBackend())
    runs = store.for_connection(connection)
    asked, untouched = runs.queue.claim(worker.id, (), 2, 30, datetime.now(UTC))
    worker._in_flight = 2  # busy: the heartbeat extends leases and reads cancels
    runs.operations.cancel(TaskRun.objects.filter(pk=asked.id), datetime.now(UTC))
    try:
        with beating(worker):
            # The beat that told the worker of this cancel read the other run too.
            wait_until(lambda: cancellation.is_requested(asked.id), 30, 0.01)
        assert not cancellation.is_requested(untouched.id)
    finally:
        cancellation.clear(asked.id)
        cancellation.clear(untouched.id)


def test_a_failed_run_count_write_is_tried_again_before_the_next_beat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = Worker(WorkerOptions(lease=3000))  # the next beat is 1,000 s away
    written = store.WorkerRegistry.beat
    failed: list[int] = []

    def fail_the_first_count(runs: Any, info: store.WorkerInfo, *args: Any) -> None:
        if info.runs_done and not failed:
            failed.append(info.runs_done)
            raise DatabaseError("the database went away for a moment")
        written(runs, info, *args)

    monkeypatch.setattr(store.WorkerRegistry, "beat", fail_the_first_count)
    with beating(worker):
        wait_until(lambda: WorkerHeartbeat.objects.filter(pk=worker.id).exists(), 30)
        worker.processed = 5  # runs finished since the first beat
        wait_until(lambda: WorkerHeartbeat.objects.filter(pk=worker.id, runs_done=5).exists(), 30)
    assert failed == [5]
