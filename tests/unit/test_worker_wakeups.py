"""When the worker's main loop claims again after a claim that emptied the queue: at once when
it polls, on the next wake-up when it listens (PostgreSQL ``LISTEN/NOTIFY``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingEvent(threading.Event):
    """A ``threading.Event`` that notes each ``wait()`` of the thread that owns the log."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    def wait(self, timeout: float | None = None) -> bool:
        """Note the wait (main thread only), then wait."""
        if threading.current_thread() is threading.main_thread():
            self.log.append("wait")
        return super().wait(timeout)


def events_of_one_run(listen: bool) -> list[Any]:
    """Start one run, let a worker (this thread) run it, return what its main loop did."""
    handle = AddTask({"a": 1, "b": 2}).start(backend=DatabaseBackend())
    worker = Worker(WorkerOptions(concurrency=2, interval=0.05, listen=listen))
    log: list[Any] = []
    worker._wake = RecordingEvent(log)
    claim = worker._claim

    def recording_claim() -> int:
        claimed = claim()
        log.append(("claim", claimed))
        return claimed

    worker._claim = recording_claim  # type: ignore[method-assign]

    def stop_when_done() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if TaskRun.objects.filter(pk=handle.id, status="succeeded").exists():
                break
            time.sleep(0.02)
        worker.stop()

    stopper = threading.Thread(target=stop_when_done)
    stopper.start()
    try:
        worker.run(install_signals=False)
    finally:
        stopper.join()
    assert TaskRun.objects.get(pk=handle.id).status == "succeeded"
    return log


def after_the_claim_of_the_run(log: list[Any]) -> Any:
    return log[log.index(("claim", 1)) + 1]


def test_a_polling_worker_claims_again_at_once_after_a_claim_that_emptied_the_queue() -> None:
    assert after_the_claim_of_the_run(events_of_one_run(listen=False)) == ("claim", 0)


def test_a_listening_worker_waits_for_a_wake_up_after_a_claim_that_emptied_the_queue() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (LISTEN/NOTIFY): runs in the PostgreSQL pass")
    assert after_the_claim_of_the_run(events_of_one_run(listen=True)) == "wait"
