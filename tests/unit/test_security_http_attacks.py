"""Attacks on the HTTP layer, each performed with Django's test client; each must fail.

One test per hole a security review found (issue 10): the name says the attack, the
assertions say how it is refused. The database is the suite's (SQLite, or PostgreSQL with
``DATABASE_URL``: CI runs both).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client, override_settings
from pydantic import BaseModel, ConfigDict

import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend, InMemoryBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.handles import TaskHandle
from django_generic_tasks.exceptions import CapacityExceededError, CloudTasksEnqueueError
from django_generic_tasks.models import TaskRun
from django_generic_tasks.signals import task_started
from tests.testapp.tasks import calls
from tests.unit.test_api import PUSH, OpaqueParams, PrivateTask

pytestmark = pytest.mark.django_db

URL = "/api/tasks/"
SECRET = "postgres://admin:hunter2@db.internal:5432/prod"


def is_staff(request: Any) -> Any:
    """The README's session auth: a callable that checks the logged-in user."""
    return request.user.is_authenticated and request.user.is_staff


class StaffTask(tasks.Task[OpaqueParams]):
    """Runs only for logged-in staff (session auth)."""

    name = "tests.attacks.staff"
    api_auth = "tests.unit.test_security_http_attacks.is_staff"

    def run(self) -> str:
        calls.append((self.name, self.params.label))
        return "ran"


class BoomTask(tasks.Task[OpaqueParams]):
    """Fails with a message that holds a secret."""

    name = "tests.attacks.boom"

    def run(self) -> None:
        raise ConnectionError(f"connect failed: {SECRET}")


class Loose(BaseModel):
    """A nested model that keeps unknown fields (so params are checked with ``json.loads``)."""

    model_config = ConfigDict(extra="allow")


class LooseParams(BaseModel):
    inner: Loose | None = None
    a: Any = None


class LooseTask(tasks.Task[LooseParams]):
    """Takes params whose unknown fields are checked at the top level only."""

    name = "tests.attacks.loose"

    def run(self) -> None:
        calls.append((self.name, None))


def post(client: Client, path: str, body: Any = None, **headers: str) -> Any:
    return client.post(URL + path, body or {}, content_type="application/json", headers=headers)


# 1. GET runs/<id> ignored per-task auth -------------------------------------------------------


def test_anonymous_caller_cannot_read_the_result_of_a_task_guarded_by_its_own_auth() -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        handle = PrivateTask({"label": "ssn-123"}).start()
        backend.run_all()
        client = Client()
        assert client.get(f"{URL}runs/{handle.id}").status_code == 401
        allowed = client.get(f"{URL}runs/{handle.id}", headers={"X-Key": "let-me-in"})
        assert (allowed.status_code, allowed.json()["result"]) == (200, "private")


def test_unknown_run_and_run_of_an_unknown_task_answer_the_same_404() -> None:
    backend = InMemoryBackend()
    request = EnqueueRequest.for_task(PrivateTask({"label": "x"}))
    with override_backend(backend):
        orphan = backend.enqueue(dataclasses.replace(request, task_name="tests.attacks.gone"))
        unknown_run = Client().get(f"{URL}runs/no-such-run")
        unknown_task = Client().get(f"{URL}runs/{orphan.id}")
    assert (unknown_run.status_code, unknown_task.status_code) == (404, 404)
    assert unknown_run.json() == unknown_task.json()


class BrokenLookupBackend(InMemoryBackend):
    """A results backend whose lookups fail with something unexpected."""

    def get_result(self, run_id: str) -> TaskHandle:
        raise RuntimeError(f"lookup failed: {SECRET}")


def test_a_failing_run_lookup_answers_404_never_500() -> None:
    with override_backend(BrokenLookupBackend()):
        response = Client().get(f"{URL}runs/anything")
    assert response.status_code == 404
    assert "hunter2" not in response.content.decode()


# 2. key over HTTP -----------------------------------------------------------------------------


def test_caller_cannot_set_a_key_on_a_task_that_does_not_accept_one() -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        response = post(Client(), "tests.add/start?key=export-user-7", {"a": 1})
        assert response.status_code == 400
        assert "api_accepts_key" in response.json()["detail"]
        assert backend.pending() == []


# 4. CSRF with session auth --------------------------------------------------------------------


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["tests.attacks.staff", "tests.attacks.staff/start"])
def test_cross_site_text_plain_form_post_with_a_session_is_refused(
    staff_client: Client, path: str
) -> None:
    response = staff_client.post(URL + path, '{"label": "x"}', content_type="text/plain")
    assert response.status_code == 415
    form = staff_client.post(URL + path, {"label": "x"})  # multipart, as a form sends it
    assert form.status_code == 415
    assert calls == []


def test_session_authenticated_json_post_without_the_csrf_token_is_refused(
    staff_client: Client,
) -> None:
    assert post(staff_client, "tests.attacks.staff", {"label": "x"}).status_code == 403
    assert calls == []


def test_session_authenticated_json_post_with_the_csrf_token_runs(staff_client: Client) -> None:
    token = "a" * 32  # a CSRF secret: the cookie, and the same value in the header
    staff_client.cookies["csrftoken"] = token
    response = post(staff_client, "tests.attacks.staff", {"label": "x"}, **{"X-CSRFToken": token})
    assert response.status_code == 200, response.content
    assert calls == [("tests.attacks.staff", "x")]


# 5. queue over HTTP ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "queue",
    [
        "projects/otherproj/locations/us-central1/queues/prod-billing",
        "not-declared",
        "q" * 150,
    ],
)
def test_caller_cannot_choose_a_queue_the_project_does_not_declare(queue: str) -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        response = post(Client(), f"tests.add/start?queue={queue}", {"a": 1})
        assert response.status_code == 400
        assert backend.pending() == []


def test_declared_queues_are_accepted(settings: Any) -> None:
    settings.TASKS_API_QUEUES = ["bulk"]
    backend = InMemoryBackend()
    with override_backend(backend):
        for queue in ("default", "bulk"):
            assert post(Client(), f"tests.add/start?queue={queue}", {"a": 1}).status_code == 202
        assert [r.queue for r in backend.pending()] == ["default", "bulk"]


@pytest.mark.django_db(transaction=True)
def test_a_150_character_queue_on_the_database_backend_answers_400_not_500() -> None:
    # On PostgreSQL (CI's second pass) this was a DataError, so a 500.
    with override_backend(DatabaseBackend()):
        response = post(Client(), f"tests.add/start?queue={'q' * 150}", {"a": 1})
        assert response.status_code == 400
        assert post(Client(), "tests.add/start?queue=default", {"a": 1}).status_code == 202
    assert TaskRun.objects.count() == 1


# 6. error bodies ------------------------------------------------------------------------------


def test_a_failed_run_does_not_leak_its_message_without_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="django_generic_tasks"):
        response = post(Client(), "tests.attacks.boom")
    assert response.json()["error"]["type"] == "builtins.ConnectionError"
    assert "hunter2" not in response.content.decode()
    assert any("hunter2" in r.getMessage() + str(r.exc_info) for r in caplog.records)


@pytest.mark.parametrize("setting", ["DEBUG", "TASKS_API_EXPOSE_ERROR_MESSAGES"])
def test_error_messages_are_shown_with_debug_or_the_opt_in(setting: str, settings: Any) -> None:
    setattr(settings, setting, True)
    assert "hunter2" in post(Client(), "tests.attacks.boom").json()["error"]["message"]
    with override_backend(RefusingBackend()):
        assert "secret-proj" in post(Client(), "tests.add/start", {"a": 1}).json()["detail"]


class RefusingBackend(InMemoryBackend):
    """A backend that refuses every start, saying where (as Cloud Tasks does)."""

    def enqueue(self, request: Any) -> TaskHandle:
        raise CloudTasksEnqueueError(
            "projects/secret-proj/locations/eu/queues/prod: PERMISSION_DENIED for "
            "invoker@secret-proj.iam.gserviceaccount.com"
        )


def test_a_failed_start_does_not_leak_project_queue_or_principal() -> None:
    with override_backend(RefusingBackend()):
        response = post(Client(), "tests.add/start", {"a": 1})
    assert response.status_code == 503
    assert "CloudTasksEnqueueError" in response.json()["detail"]
    assert "secret-proj" not in response.content.decode()


# 7. throttling on open endpoints --------------------------------------------------------------


@override_settings(ROOT_URLCONF="tests.throttled_urls")
def test_an_anonymous_rate_throttle_limits_start_on_open_endpoints() -> None:
    cache.clear()
    with override_backend(InMemoryBackend()):
        codes = [
            Client()
            .post("/throttled/tasks/tests.add/start", {"a": 1}, content_type="application/json")
            .status_code
            for _ in range(4)
        ]
    assert codes == [202, 202, 429, 429]


@override_settings(ROOT_URLCONF="tests.throttled_urls")
def test_authenticated_callers_are_not_anonymous_to_the_throttle() -> None:
    cache.clear()
    codes = [
        Client()
        .post(
            "/throttled/tasks/tests.api.private",
            {},
            content_type="application/json",
            headers={"X-Key": "let-me-in"},
        )
        .status_code
        for _ in range(4)
    ]
    assert codes == [200] * 4


# 14. deeply nested JSON -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["tests.add", "tests.add/start", "tests.attacks.loose", "tests.attacks.loose/start"]
)
@pytest.mark.parametrize("push", [False, True])
def test_deeply_nested_json_answers_4xx_never_500(path: str, push: bool, settings: Any) -> None:
    headers = {}
    if push:
        settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.PushQueueKey"
        headers = {"X-CloudTasks-TaskName": "t1", **PUSH}
    body = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with override_backend(InMemoryBackend()):
        response = Client().post(URL + path, body, content_type="application/json", headers=headers)
    assert 400 <= response.status_code < 500 or (push and response.status_code == 200)
    assert calls == []


# 16. push headers from callers that are not the push queue -----------------------------------


@pytest.mark.parametrize("auth", [None, "tests.unit.test_api.allow_header_key"])
def test_caller_that_is_not_the_push_queue_cannot_choose_run_id_or_attempt(
    auth: str | None, settings: Any
) -> None:
    settings.TASKS_API_AUTHENTICATION = auth
    headers = {
        "X-Key": "let-me-in",
        "X-Task-Run-Id": "chosen-run-id",
        "X-CloudTasks-TaskName": "chosen-task-name",
        "X-CloudTasks-TaskRetryCount": "7",
    }
    body = post(Client(), "tests.api.always_fails", {}, **headers).json()
    assert body["run_id"] not in {"chosen-run-id", "chosen-task-name"}
    assert body["attempt"] == 1
    # Nor can it pass as a delivery: invalid params get the 422, not a "failed" run.
    assert post(Client(), "tests.add", {"a": "x"}, **headers).status_code == 422


class MappedQueuesBackend(InMemoryBackend):
    """A backend with a ``queues`` mapping (as Cloud Tasks and Celery have)."""

    queues = {"reports": "reports-queue"}


def test_the_backends_queue_mapping_names_are_declared_queues() -> None:
    backend = MappedQueuesBackend()
    with override_backend(backend):
        assert post(Client(), "tests.add/start?queue=reports", {"a": 1}).status_code == 202
        assert post(Client(), "tests.add/start?queue=reports-queue", {"a": 1}).status_code == 400
    assert [r.queue for r in backend.pending()] == ["reports"]


# CapacityExceededError ------------------------------------------------------------------------


def test_a_run_refused_for_capacity_answers_503_so_the_queue_retries_later() -> None:
    def at_capacity(**kwargs: Any) -> None:
        raise CapacityExceededError("12 timed-out runs are still running")

    task_started.connect(at_capacity, dispatch_uid="tests-at-capacity")
    try:
        response = post(Client(), "tests.add", {"a": 1})
    finally:
        task_started.disconnect(dispatch_uid="tests-at-capacity")
    assert response.status_code == 503
    assert "12 timed-out" not in response.content.decode()
    assert calls == []
