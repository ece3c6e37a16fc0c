"""CeleryBackend against the machine's Redis and RabbitMQ, with real ``celery worker`` processes.

Workers run ``celery -A tests.celery_app worker`` on a queue unique to this test run; tasks
(tests/workerapp/tasks.py) record their side effects in files under ``TASKS_TEST_STORE``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

import pytest

from django_generic_tasks import conf
from django_generic_tasks.backends.celery import CeleryBackend
from django_generic_tasks.core.status import TaskStatus
from tests.celery_app import make_app
from tests.conftest import need_service
from tests.polling import wait_until
from tests.workerapp.tasks import FlakyRecordTask, RecordTask, SleepyTask, events

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
BROKERS = {
    "redis": ("redis://127.0.0.1:6379/15", 6379),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
}
RESULTS = "redis://127.0.0.1:6379/14"


def reachable(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class CeleryWorker:
    """A ``celery worker`` process consuming one queue."""

    def __init__(self, broker: str, queue: str, store: Path, log: Path, **env: str) -> None:
        self.broker, self.queue, self.store, self.log = broker, queue, store, log
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> CeleryWorker:
        env = {
            **os.environ,
            "CELERY_BROKER_URL": self.broker,
            "CELERY_RESULT_BACKEND": RESULTS if reachable(6379) else "",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "TASKS_TEST_STORE": str(self.store),
            "PYTHONPATH": str(ROOT),
            **self.env,
        }
        name = f"{self.queue}-{uuid.uuid4().hex[:6]}@%h"
        command = [CELERY, "-A", "tests.celery_app", "worker", "--pool=solo", "-Q", self.queue]
        command += ["-n", name, "--without-mingle", "--without-gossip", "--without-heartbeat"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "-l", "info"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, timeout=90)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{self.log.read_text()[-3000:]}")
        return " ready." in self.log.read_text()

    def kill(self) -> None:
        """SIGKILL the worker: no warm shutdown, no acknowledgement."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


def delete_queue(broker: str, queue: str) -> None:
    """Remove this run's queue from the broker (RabbitMQ keeps durable queues)."""
    with make_app(broker).connection_for_write() as connection, suppress(Exception):
        connection.default_channel.queue_delete(queue)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("celery-store")
    previous = os.environ.get("TASKS_TEST_STORE")
    os.environ["TASKS_TEST_STORE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("TASKS_TEST_STORE", None)
    else:
        os.environ["TASKS_TEST_STORE"] = previous


@pytest.fixture(scope="module", params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    url, port = BROKERS[request.param]
    if not reachable(port):
        need_service(f"{request.param} is not reachable on 127.0.0.1:{port}")
    return url


@pytest.fixture(scope="module")
def worker(broker: str, store: Path) -> Iterator[CeleryWorker]:
    queue = f"dgt-test-{uuid.uuid4().hex[:10]}"
    worker = CeleryWorker(broker, queue, store, store / f"{queue}.log").start()
    yield worker
    worker.stop()
    delete_queue(broker, queue)


@pytest.fixture
def backend(worker: CeleryWorker) -> Iterator[CeleryBackend]:
    app = make_app(worker.broker, RESULTS if reachable(6379) else None)
    backend = CeleryBackend(app=app, queues={"default": worker.queue})
    with conf.override_backend(backend):
        yield backend


def token() -> str:
    return uuid.uuid4().hex


def test_started_task_runs_on_a_celery_worker(backend: CeleryBackend) -> None:
    name = token()
    RecordTask({"token": name}).start()
    wait_until(lambda: events(name))
    assert [what for _, what in events(name)] == ["ran"]


def test_delay_is_honoured(backend: CeleryBackend) -> None:
    name = token()
    started = time.time()
    handle = RecordTask({"token": name}).start(delay=timedelta(seconds=1.5))
    assert handle.status is TaskStatus.SCHEDULED
    [(ran_at, _)] = wait_until(lambda: events(name))
    assert ran_at >= started + 1.5


def test_retries_follow_the_task_policy_then_succeed(backend: CeleryBackend) -> None:
    name = token()
    handle = FlakyRecordTask({"token": name, "failures": 2}).start()
    wait_until(lambda: "succeeded" in [what for _, what in events(name)])
    assert [what for _, what in events(name)] == ["attempt"] * 3 + ["succeeded"]
    if backend.supports_results:
        wait_until(lambda: handle.refresh().status.is_finished)
        assert (handle.status, handle.attempts, handle.result) == (
            TaskStatus.SUCCEEDED,
            3,
            name,
        )


def test_discard_on_ends_the_run_without_retry(backend: CeleryBackend) -> None:
    if not backend.supports_results:
        need_service("the discard test reads the run's status from Redis results")
    name = "discard-" + token()
    handle = FlakyRecordTask({"token": name}).start()
    wait_until(lambda: handle.refresh().status.is_finished)
    assert handle.status is TaskStatus.DISCARDED
    assert [what for _, what in events(name)] == ["attempt"]


def test_worker_killed_mid_task_redelivers_with_acks_late(
    broker: str, store: Path, tmp_path: Path
) -> None:
    queue = f"dgt-crash-{uuid.uuid4().hex[:10]}"
    # Redis hands an unacknowledged message back after the visibility timeout.
    first = CeleryWorker(broker, queue, store, tmp_path / "first.log", CELERY_VT="2").start()
    backend = CeleryBackend(app=make_app(broker), queues={"default": queue})
    name = token()
    try:
        with conf.override_backend(backend):
            SleepyTask({"token": name}).start()
        wait_until(lambda: events(name))
        first.kill()
        second = CeleryWorker(broker, queue, store, tmp_path / "second.log", CELERY_VT="2")
        try:
            second.start()
            wait_until(lambda: "done" in [what for _, what in events(name)], timeout=90)
        finally:
            second.stop()
    finally:
        first.kill()
        delete_queue(broker, queue)
    assert [what for _, what in events(name)] == ["started", "started", "done"]


def test_higher_priority_runs_first(broker: str, store: Path, tmp_path: Path) -> None:
    queue = f"dgt-priority-{uuid.uuid4().hex[:10]}"
    backend = CeleryBackend(app=make_app(broker), queues={"default": queue})
    names = {priority: token() for priority in (-100, 0, 100)}
    try:
        with conf.override_backend(backend):
            for priority, name in names.items():  # lowest first: the worker is not running yet
                RecordTask({"token": name}).start(priority=priority)
        worker = CeleryWorker(broker, queue, store, tmp_path / "worker.log").start()
        try:
            wait_until(lambda: all(events(name) for name in names.values()))
        finally:
            worker.stop()
    finally:
        delete_queue(broker, queue)
    ran_at = {priority: events(name)[0][0] for priority, name in names.items()}
    assert ran_at[100] < ran_at[0] < ran_at[-100]
