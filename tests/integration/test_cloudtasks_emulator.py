"""End to end: CloudTasksBackend -> the Cloud Tasks emulator -> the HTTP endpoint -> the task.

The emulator runs as its own process (``tests.cloudtasks_emulator``) and pushes each task to
a real threaded WSGI server on 127.0.0.1 serving the test project, with
``TASKS_API_AUTHENTICATION = "oidc"``. The emulator mints no OIDC token, so the backend's
documented test hook ``emulator_oidc_token`` attaches one minted locally
(``tests.oidc_support``) for the configured service account; the endpoint verifies it against
a local certificates server. The task runs in this process, so its side effects are visible.

How the emulator dispatches (which the waiting below relies on): one thread per queue posts
tasks one after another, and a failed task goes back to the end of its queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import CloudTasksBackend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import CloudTasksEnqueueError
from django_generic_tasks.signals import task_finished, task_started
from tests.cloudtasks_emulator import LOCATION, PROJECT, Emulator
from tests.cloudtasks_emulator import cloudtasks_emulator as cloudtasks_emulator  # noqa: PLC0414 - a fixture
from tests.oidc_support import (
    OIDC_EMAIL,
    CertsServer,
    SigningKey,
    google_claims,
    mint_token,
)
from tests.oidc_support import certs_server as certs_server  # noqa: PLC0414 - a fixture
from tests.oidc_support import other_signing_key as other_signing_key  # noqa: PLC0414 - a fixture
from tests.oidc_support import signing_key as signing_key  # noqa: PLC0414 - a fixture
from tests.testapp import tasks as testapp

pytestmark = pytest.mark.slow

WAIT = 60.0  # seconds before a wait gives up: generous, for a loaded CI machine


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[str]:
    """The test project on a real threaded WSGI server on 127.0.0.1; yields its base URL."""
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class Runs:
    """What the endpoint ran, recorded from the task signals (sent in the server's threads)."""

    started: list[tuple[str, datetime]] = field(default_factory=list)
    finished: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_started(self, sender: Any, run_id: str, **kwargs: Any) -> None:
        with self.lock:
            self.started.append((run_id, datetime.now(UTC)))

    def on_finished(self, sender: Any, outcome: Any, **kwargs: Any) -> None:
        with self.lock:
            self.finished.append(outcome)

    def of(self, run_id: str) -> list[Any]:
        with self.lock:
            return [o for o in self.finished if o.run_id == run_id]


@dataclass
class Setup:
    """One test's queue, backend and records."""

    emulator: Emulator
    queue: str
    backend: CloudTasksBackend
    runs: Runs


def wait_for(condition: Callable[[], Any], what: str, emulator: Emulator) -> Any:
    """Poll ``condition`` until it is truthy; fail with the emulator's log after ``WAIT``."""
    deadline = time.monotonic() + WAIT
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; emulator log:\n{emulator.log_tail()}")
        time.sleep(0.02)


def make_backend(
    emulator: Emulator, queue: str, base_url: str, token: Callable[[str, str], str] | None
) -> CloudTasksBackend:
    return CloudTasksBackend(
        project=PROJECT,
        location=LOCATION,
        queue=queue,
        base_url=f"{base_url}/api/tasks/",
        service_account_email=OIDC_EMAIL,
        emulator_host=emulator.host,
        allow_emulator=True,
        emulator_oidc_token=token,
        retry_deadline=10.0,
    )


def token_source(key: SigningKey, **claims: Any) -> Callable[[str, str], str]:
    """The test hook: a fresh token per task, signed by ``key`` (claims may be overridden)."""

    def mint(audience: str, email: str) -> str:
        return mint_token(
            google_claims(**{"audience": audience, "email": email, **claims}), key=key
        )

    return mint


@pytest.fixture
def setup(
    cloudtasks_emulator: Emulator,
    wsgi_server: str,
    settings: Any,
    certs_server: CertsServer,
    signing_key: SigningKey,
) -> Iterator[Setup]:
    queue = cloudtasks_emulator.create_queue()
    backend = make_backend(cloudtasks_emulator, queue, wsgi_server, token_source(signing_key))
    settings.TASKS_API_AUTHENTICATION = "oidc"
    settings.TASKS_OIDC_AUDIENCE = backend.audience  # the pairing the README documents
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = [OIDC_EMAIL]
    settings.TASKS_OIDC_CERTS_URL = certs_server.url
    settings.TASKS_BACKEND = backend  # an instance in settings: Task.start() uses it
    runs = Runs()
    task_started.connect(runs.on_started, weak=False)
    task_finished.connect(runs.on_finished, weak=False)
    try:
        yield Setup(cloudtasks_emulator, queue, backend, runs)
    finally:
        task_started.disconnect(runs.on_started)
        task_finished.disconnect(runs.on_finished)
        cloudtasks_emulator.delete_queue(queue)  # drops anything still being retried
        backend.close()


def drain(s: Setup) -> None:
    """Return once every retry the emulator had pending at call time has been dispatched.

    The emulator posts a queue's tasks one at a time and re-appends failures at the end: a
    first marker task runs only after any task dispatched before it has been put back, and a
    second marker started after the first ran can only run after those put-back tasks.
    """
    for _ in range(2):
        marker = testapp.AddTask({"a": 10**9, "b": time.monotonic_ns()})
        handle = marker.start()
        wait_for(lambda h=handle: s.runs.of(h.id), "a marker task", s.emulator)


def test_a_started_task_is_pushed_to_its_endpoint_and_runs(setup: Setup) -> None:
    handle = testapp.AddTask({"a": 2, "b": 3}).start()

    [outcome] = wait_for(lambda: setup.runs.of(handle.id), "the task to run", setup.emulator)
    assert (outcome.status, outcome.result, outcome.attempt) == (TaskStatus.SUCCEEDED, 5, 1)
    assert ("tests.add", 5) in testapp.calls


def test_delay_is_honoured(setup: Setup) -> None:
    before = datetime.now(UTC)
    handle = testapp.AddTask({"a": 4}).start(delay=timedelta(seconds=1.5))
    waiting = setup.emulator.list_tasks(setup.queue)
    assert [t.schedule_time >= before + timedelta(seconds=1.5) for t in waiting] == [True]

    wait_for(lambda: setup.runs.of(handle.id), "the delayed task to run", setup.emulator)
    [started_at] = [at for run_id, at in setup.runs.started if run_id == handle.id]
    assert started_at >= before + timedelta(seconds=1.5)


def test_a_task_failing_twice_is_retried_by_the_queue_and_ends_succeeded(setup: Setup) -> None:
    handle = testapp.FlakyTask({"token": "flaky-e2e", "failures": 2}).start()

    wait_for(lambda: len(setup.runs.of(handle.id)) == 3, "three attempts", setup.emulator)
    drain(setup)
    outcomes = setup.runs.of(handle.id)
    assert [(o.attempt, o.run_status) for o in outcomes] == [
        (1, TaskStatus.SCHEDULED),
        (2, TaskStatus.SCHEDULED),
        (3, TaskStatus.SUCCEEDED),
    ]
    assert testapp.attempts["flaky-e2e"] == 3
    assert ("tests.flaky", "flaky-e2e") in testapp.calls


def test_discard_on_stops_the_retries(setup: Setup) -> None:
    handle = testapp.FlakyTask({"token": "discard-e2e"}).start()

    wait_for(lambda: setup.runs.of(handle.id), "the first attempt", setup.emulator)
    drain(setup)
    assert [o.status for o in setup.runs.of(handle.id)] == [TaskStatus.DISCARDED]
    assert testapp.attempts["discard-e2e"] == 1
    assert setup.emulator.list_tasks(setup.queue) == []


def test_exhausted_max_attempts_stop_the_retries(setup: Setup) -> None:
    handle = testapp.FlakyTask({"token": "always-e2e", "failures": 100}).start()
    limit = testapp.FlakyTask.max_attempts

    wait_for(lambda: len(setup.runs.of(handle.id)) == limit, "every attempt", setup.emulator)
    drain(setup)
    outcomes = setup.runs.of(handle.id)
    assert [o.attempt for o in outcomes] == list(range(1, limit + 1))
    assert [o.run_status for o in outcomes] == [TaskStatus.SCHEDULED] * (limit - 1) + [
        TaskStatus.FAILED
    ]
    assert testapp.attempts["always-e2e"] == limit
    assert setup.emulator.list_tasks(setup.queue) == []


@pytest.mark.parametrize(
    "forgery",
    ["signed by an unpublished key", "wrong audience", "account not allowed", "no token"],
)
def test_a_task_with_a_bad_token_is_never_run(
    setup: Setup,
    wsgi_server: str,
    signing_key: SigningKey,
    other_signing_key: SigningKey,
    forgery: str,
) -> None:
    token = {
        "signed by an unpublished key": token_source(other_signing_key),
        "wrong audience": token_source(signing_key, audience="https://other.example.com"),
        "account not allowed": token_source(
            signing_key, email="intruder@evil.iam.gserviceaccount.com"
        ),
        "no token": None,
    }[forgery]
    forged = make_backend(setup.emulator, setup.queue, wsgi_server, token)
    try:
        testapp.AddTask({"a": 666, "b": 0}).start(backend=forged)

        def rejected_three_times() -> bool:
            return any(t.dispatch_count >= 3 for t in setup.emulator.list_tasks(setup.queue))

        wait_for(rejected_three_times, "three rejected dispatches", setup.emulator)
    finally:
        forged.close()
    assert setup.runs.started == []
    assert ("tests.add", 666) not in testapp.calls


def test_start_many_pushes_every_task(setup: Setup) -> None:
    handles = testapp.AddTask.start_many([{"a": 1000 + i} for i in range(20)])

    wait_for(lambda: all(setup.runs.of(h.id) for h in handles), "all twenty tasks", setup.emulator)
    assert sorted(v for name, v in testapp.calls if name == "tests.add") == list(range(1000, 1020))


def test_a_missing_queue_is_one_clear_error(setup: Setup, wsgi_server: str) -> None:
    missing = f"projects/{PROJECT}/locations/{LOCATION}/queues/no-such-queue"
    backend = make_backend(setup.emulator, missing, wsgi_server, None)
    try:
        with pytest.raises(CloudTasksEnqueueError, match=f"{missing}.*FAILED_PRECONDITION"):
            testapp.AddTask({"a": 1}).start(backend=backend)
    finally:
        backend.close()


def test_a_push_whose_params_no_longer_validate_is_not_retried(setup: Setup) -> None:
    # The params model changed since the start: the endpoint answers 200 "failed" to the queue.
    change = {"params_json": '{"a": "not a number"}'}
    setup.backend.enqueue(replace(EnqueueRequest.for_task(testapp.AddTask({"a": 1})), **change))
    drain(setup)
    assert setup.emulator.list_tasks(setup.queue) == []


class AlwaysFailingParams(BaseModel):
    token: str


class AlwaysFailingTask(tasks.Task[AlwaysFailingParams]):
    """Fails every attempt; three at most."""

    name = "tests.emulator.always_failing"
    max_attempts = 3
    backoff_base = 0.01
    retry_on = (RuntimeError,)

    def run(self) -> None:
        raise RuntimeError(f"failing {self.params.token}")


def test_without_oidc_an_allowed_emulator_delivers_max_attempts_times_under_one_run_id(
    setup: Setup, wsgi_server: str, settings: Any
) -> None:
    # No OIDC token and no auth: the emulator earns trust by being allowed (issue 21, item 4).
    settings.TASKS_API_AUTHENTICATION = None
    backend = make_backend(setup.emulator, setup.queue, wsgi_server, None)
    settings.TASKS_BACKEND = backend
    try:
        handle = AlwaysFailingTask(AlwaysFailingParams(token="no-oidc")).start()
        wait_for(lambda: len(setup.runs.of(handle.id)) == 3, "three attempts", setup.emulator)
        drain(setup)
    finally:
        backend.close()
    outcomes = setup.runs.of(handle.id)
    assert [(o.attempt, o.run_status) for o in outcomes] == [
        (1, TaskStatus.SCHEDULED),
        (2, TaskStatus.SCHEDULED),
        (3, TaskStatus.FAILED),
    ]
    deliveries = [run_id for run_id, _ in setup.runs.started]
    assert deliveries.count(handle.id) == 3
    assert len(deliveries) == 3 + 2  # this run's three, and drain()'s two markers
    assert setup.emulator.list_tasks(setup.queue) == []
