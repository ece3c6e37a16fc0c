"""The exact ``CreateTask`` calls CloudTasksBackend makes, over real gRPC to an in-process fake.

The fake speaks the Cloud Tasks gRPC service on 127.0.0.1 and records each request as it
arrives on the wire; it deduplicates task names as Cloud Tasks does (the emulator does not),
and can answer with scripted errors. This pins what the emulator ignores: OIDC token, task
names, dispatch deadline, retries and error mapping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.cloud import tasks_v2

from django_generic_tasks.backends import CloudTasksBackend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import (
    BulkEnqueueError,
    CloudTasksEnqueueError,
    EnqueueError,
    UnsupportedOptionError,
)
from tests.testapp.tasks import AddTask

PARENT = "projects/proj/locations/loc/queues/q"
Decide = Callable[[Any], grpc.StatusCode | None]


class FakeCloudTasks:
    """Records CreateTask requests; ``decide(request)`` may answer with an error code."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Any] = []
        self.names: set[str] = set()
        self.script: list[grpc.StatusCode] = []
        self.decide: Decide | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.barrier: threading.Barrier | None = None
        self.lose_first_response = False

    def create_task(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            code = self.script.pop(0) if self.script else None
        try:
            if self.barrier is not None:
                self.barrier.wait()
            code = code or (self.decide(request) if self.decide else None)
            if code is not None:
                context.abort(code, f"scripted {code.name}")
            with self.lock:
                if request.task.name in self.names:
                    context.abort(grpc.StatusCode.ALREADY_EXISTS, "task exists")
                self.names.add(request.task.name)
                if self.lose_first_response:
                    self.lose_first_response = False
                    context.abort(grpc.StatusCode.UNAVAILABLE, "response lost")
            return request.task
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def grpc_server() -> Iterator[tuple[str, list[FakeCloudTasks]]]:
    current: list[FakeCloudTasks] = [FakeCloudTasks()]

    def create_task(request: Any, context: grpc.ServicerContext) -> Any:
        return current[0].create_task(request, context)

    handler = grpc.method_handlers_generic_handler(
        "google.cloud.tasks.v2.CloudTasks",
        {
            "CreateTask": grpc.unary_unary_rpc_method_handler(
                create_task,
                request_deserializer=tasks_v2.CreateTaskRequest.deserialize,
                response_serializer=tasks_v2.Task.serialize,
            )
        },
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", current
    server.stop(grace=None)


@pytest.fixture
def fake(grpc_server: tuple[str, list[FakeCloudTasks]]) -> FakeCloudTasks:
    grpc_server[1][0] = FakeCloudTasks()
    return grpc_server[1][0]


@pytest.fixture
def backend(grpc_server: tuple[str, list[FakeCloudTasks]]) -> Iterator[CloudTasksBackend]:
    b = CloudTasksBackend(
        project="proj",
        location="loc",
        queue="q",
        base_url="https://app.example.com/api/tasks/",
        service_account_email="invoker@proj.iam.gserviceaccount.com",
        emulator_host=grpc_server[0],
        allow_emulator=True,
        retry_deadline=2.0,
    )
    yield b
    b.close()


def request_for(a: int = 1, **changes: Any) -> EnqueueRequest:
    return replace(EnqueueRequest.for_task(AddTask({"a": a, "b": 2})), **changes)


def test_start_sends_a_post_http_task_with_json_body_and_oidc_token(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    handle = AddTask({"a": 1, "b": 2}).start(backend=backend)

    [sent] = fake.requests
    assert sent.parent == PARENT
    assert sent.task.name.startswith(f"{PARENT}/tasks/")
    http = sent.task.http_request
    assert http.url == "https://app.example.com/api/tasks/tests.add"
    assert http.http_method == tasks_v2.HttpMethod.POST
    assert dict(http.headers) == {"Content-Type": "application/json", "X-Task-Run-Id": handle.id}
    assert json.loads(http.body) == {"a": 1, "b": 2}
    assert http.oidc_token.service_account_email == "invoker@proj.iam.gserviceaccount.com"
    assert http.oidc_token.audience == "https://app.example.com"
    assert "schedule_time" not in sent.task
    assert "dispatch_deadline" not in sent.task
    assert (handle.name, handle.status) == ("tests.add", TaskStatus.READY)


def test_delay_and_eta_become_schedule_time(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    eta = datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    handle = AddTask({"a": 1}).start(eta=eta, backend=backend)
    before = datetime.now(UTC)
    AddTask({"a": 1}).start(delay=timedelta(minutes=5), backend=backend)

    assert fake.requests[0].task.schedule_time == eta
    delayed = fake.requests[1].task.schedule_time
    assert before + timedelta(minutes=4) < delayed <= datetime.now(UTC) + timedelta(minutes=5)
    assert handle.status is TaskStatus.SCHEDULED


def test_timeout_becomes_dispatch_deadline(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    backend.enqueue(request_for(timeout=90.0))
    assert fake.requests[0].task.dispatch_deadline == timedelta(seconds=90)


def test_timeout_out_of_range_is_refused_and_nothing_is_sent(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    with pytest.raises(UnsupportedOptionError, match="timeout=5s"):
        backend.enqueue(request_for(timeout=5.0))
    assert fake.requests == []


def test_same_key_twice_is_one_task_and_the_second_start_is_not_an_error(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    first = AddTask({"a": 1}).start(key="order-42", backend=backend)
    second = AddTask({"a": 1}).start(key="order-42", backend=backend)
    AddTask({"a": 1}).start(key="order-43", backend=backend)

    assert fake.requests[0].task.name == fake.requests[1].task.name
    assert fake.requests[2].task.name != fake.requests[0].task.name
    assert len(fake.names) == 2
    assert first.status is second.status is TaskStatus.READY


def test_transient_errors_are_retried_with_the_same_task_name(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    fake.script = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    AddTask({"a": 1}).start(backend=backend)
    assert len(fake.requests) == 3
    assert len({r.task.name for r in fake.requests}) == 1
    assert len(fake.names) == 1


def test_a_retried_create_whose_first_try_landed_is_not_doubled(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    fake.lose_first_response = True
    AddTask({"a": 1}).start(backend=backend)
    assert len(fake.requests) == 2
    assert len(fake.names) == 1


def test_transient_errors_past_the_retry_deadline_raise_enqueue_error(
    grpc_server: tuple[str, list[FakeCloudTasks]], fake: FakeCloudTasks
) -> None:
    fake.decide = lambda request: grpc.StatusCode.UNAVAILABLE
    b = CloudTasksBackend(
        project="proj",
        location="loc",
        queue="q",
        base_url="http://x/",
        emulator_host=grpc_server[0],
        allow_emulator=True,
        retry_deadline=1.0,
    )
    with pytest.raises(CloudTasksEnqueueError, match=f"{PARENT}.*retrying") as caught:
        b.enqueue(request_for())
    b.close()
    assert len(fake.requests) > 1
    assert isinstance(caught.value, EnqueueError)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    ],
)
def test_permanent_errors_raise_once_naming_queue_and_cause(
    backend: CloudTasksBackend, fake: FakeCloudTasks, code: grpc.StatusCode
) -> None:
    fake.script = [code]
    with pytest.raises(CloudTasksEnqueueError) as caught:
        AddTask({"a": 1}).start(backend=backend)
    assert PARENT in str(caught.value)
    assert code.name in str(caught.value)
    assert len(fake.requests) == 1


def test_emulator_token_hook_sends_a_bearer_header(
    grpc_server: tuple[str, list[FakeCloudTasks]], fake: FakeCloudTasks
) -> None:
    seen: list[tuple[str, str]] = []

    def mint(audience: str, email: str) -> str:
        seen.append((audience, email))
        return "minted-token"

    b = CloudTasksBackend(
        project="proj",
        location="loc",
        base_url="http://127.0.0.1:1/api/tasks",
        service_account_email="sa@proj.iam",
        emulator_host=grpc_server[0],
        allow_emulator=True,
        emulator_oidc_token=mint,
    )
    AddTask({"a": 1}).start(backend=b)
    b.close()
    assert fake.requests[0].task.http_request.headers["Authorization"] == "Bearer minted-token"
    assert seen == [("http://127.0.0.1:1", "sa@proj.iam")]


def test_start_many_runs_creates_concurrently_with_one_handle_each(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    fake.barrier = threading.Barrier(4, timeout=10)  # passes only if 4 creates are in flight
    handles = AddTask.start_many([{"a": i} for i in range(4)], backend=backend)
    fake.barrier = None
    handles += AddTask.start_many([{"a": i} for i in range(4, 40)], backend=backend)

    assert [h.status for h in handles] == [TaskStatus.READY] * 40
    sent_ids = {r.task.http_request.headers["X-Task-Run-Id"] for r in fake.requests}
    assert sent_ids == {h.id for h in handles}
    assert len(fake.names) == 40


def test_start_many_never_exceeds_its_concurrency_bound(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    backend.bulk_concurrency = 3
    fake.barrier = threading.Barrier(3, timeout=10)
    AddTask.start_many([{"a": i} for i in range(30)], backend=backend)
    assert fake.max_in_flight == 3


def test_start_many_reports_each_failure_and_still_starts_the_rest(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    def decide(request: Any) -> grpc.StatusCode | None:
        failing = json.loads(request.task.http_request.body)["a"] in {3, 7}
        return grpc.StatusCode.PERMISSION_DENIED if failing else None

    fake.decide = decide
    with pytest.raises(BulkEnqueueError, match="accepted 8 of 10") as caught:
        AddTask.start_many([{"a": i} for i in range(10)], backend=backend)

    error = caught.value
    assert [index for index, _ in error.failures] == [3, 7]
    assert all(isinstance(exc, CloudTasksEnqueueError) for _, exc in error.failures)
    statuses = [h.status for h in error.handles]
    assert statuses.count(TaskStatus.FAILED) == 2
    assert statuses[3] is statuses[7] is TaskStatus.FAILED
    assert "PERMISSION_DENIED" in error.handles[3].error.message  # type: ignore[union-attr]
    assert len(fake.names) == 8


def test_start_many_validates_every_request_before_creating_any(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    requests = [request_for(1), request_for(2, timeout=3600.0)]
    with pytest.raises(UnsupportedOptionError):
        backend.enqueue_many(requests)
    assert fake.requests == []
    assert backend.enqueue_many([]) == []


@pytest.mark.django_db
def test_start_inside_a_transaction_waits_for_the_commit(
    backend: CloudTasksBackend,
    fake: FakeCloudTasks,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        handle = AddTask({"a": 1}).start(backend=backend)
        assert fake.requests == []
        assert handle.status is TaskStatus.PENDING
    assert len(fake.requests) == 1
    assert handle.status is TaskStatus.READY


def test_one_client_shared_by_threads(backend: CloudTasksBackend) -> None:
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: backend._clients.get(), range(32)))
    assert len({id(c) for c in clients}) == 1


def test_a_new_client_after_fork(
    backend: CloudTasksBackend, fake: FakeCloudTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent_client = backend._clients.get()
    monkeypatch.setattr("os.getpid", lambda: -1)  # as seen from a forked child
    child_client = backend._clients.get()
    assert child_client is not parent_client
    assert backend._clients.get() is child_client
    AddTask({"a": 1}).start(backend=backend)
    assert len(fake.requests) == 1


def test_start_many_of_one_needs_no_thread_pool(
    backend: CloudTasksBackend, fake: FakeCloudTasks
) -> None:
    [handle] = backend.enqueue_many([request_for()])
    assert handle.status is TaskStatus.READY
    assert len(fake.requests) == 1
