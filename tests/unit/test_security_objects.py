"""Attacks on object-level authorization and idempotency keys over HTTP (issue 21, items 1, 2,
8), each performed with Django's test client against the real run store; each must fail.

Two users, ``a`` and ``b``, each own rows of ``Customer`` named ``<owner>-<what>`` (stand-ins
for documents). The database is the suite's (SQLite, or PostgreSQL with ``DATABASE_URL``:
CI runs both; the NUL tests need PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, RequestFactory
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.api.access import FORBIDDEN, caller_identity
from django_generic_tasks.backends import DatabaseBackend, InMemoryBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.execution import Attempt, execute
from django_generic_tasks.models import TaskRun
from tests.testapp.models import Country, Customer
from tests.unit.test_api import PUSH

pytestmark = pytest.mark.django_db

URL = "/api/tasks/"
ran: list[Any] = []


def logged_in(request: Any) -> Any:
    """Session auth whose return value is the user (so the caller has an identity)."""
    return request.user if request.user.is_authenticated else None


class DocParams(BaseModel):
    doc: tasks.ModelRef[Customer]


class ReadDoc(tasks.Task[DocParams]):
    """Returns a document's content, to its owner only."""

    name = "tests.objects.read_doc"
    api_auth = "tests.unit.test_security_objects.logged_in"
    api_accepts_key = True

    def api_authorize(self, request: Any) -> bool:
        return bool(self.params.doc.name.split("-")[0] == request.user.username)

    def run(self) -> str:
        ran.append(self.params.doc.name)
        return f"content of {self.params.doc.name}"


class ReadAnyDoc(tasks.Task[DocParams]):
    """Takes a model ref and authorizes nothing (system check W302 warns about it)."""

    name = "tests.objects.read_any_doc"

    def run(self) -> str:
        ran.append(self.params.doc.name)
        return self.params.doc.name


class TwoRefs(BaseModel):
    first: tasks.ModelRef[Customer]
    second: tasks.ModelRef[Customer]
    country: tasks.ModelRef[Country]


class UsesTwoRefs(tasks.Task[TwoRefs]):
    name = "tests.objects.two_refs"

    def run(self) -> None:
        ran.append((self.params.first, self.params.second, self.params.country))


class TextParams(BaseModel):
    text: str


class StoreText(tasks.Task[TextParams]):
    name = "tests.objects.store_text"
    api_accepts_key = True

    def run(self) -> None:
        ran.append(self.params.text)


class TenantKeys(tasks.Task[TextParams]):
    """Shares keys among every caller of one tenant (here: one tenant for all)."""

    name = "tests.objects.tenant_keys"
    api_auth = "tests.unit.test_security_objects.logged_in"
    api_accepts_key = True

    def api_key_scope(self, request: Any) -> str | None:
        return "tenant-1"

    def run(self) -> None:
        ran.append(self.params.text)


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


@pytest.fixture
def docs() -> dict[str, int]:
    return {
        name: Customer.objects.create(name=name).pk
        for name in ("a-payroll", "a-notes", "b-taxes", "b-notes")
    }


def client_of(username: str) -> Client:
    user, _ = User.objects.get_or_create(username=username)
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(URL + path, body, content_type="application/json")


# 1. object-level authorization ----------------------------------------------------------------


@pytest.mark.parametrize("path", [ReadDoc.name, ReadDoc.name + "/start"])
def test_a_caller_cannot_run_or_start_a_task_on_another_callers_row(
    path: str, docs: dict[str, int]
) -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        stolen = post(client_of("a"), path, {"doc": docs["b-taxes"]})
        assert stolen.status_code == 403
        assert "b-taxes" not in stolen.content.decode()
        assert (ran, backend.pending()) == ([], [])  # nothing ran, nothing started
        own = post(client_of("a"), path, {"doc": docs["a-payroll"]})
    assert own.status_code in (200, 202), own.content
    if own.status_code == 200:
        assert own.json()["result"] == "content of a-payroll"


@pytest.mark.parametrize("path", [ReadDoc.name, ReadDoc.name + "/start", ReadAnyDoc.name])
def test_a_missing_row_answers_exactly_like_a_row_the_caller_may_not_see(
    path: str, docs: dict[str, int]
) -> None:
    with override_backend(InMemoryBackend()):
        missing = post(client_of("a"), path, {"doc": max(docs.values()) + 1000})
        forbidden = post(client_of("a"), ReadDoc.name, {"doc": docs["b-taxes"]})
    assert (missing.status_code, missing.content) == (forbidden.status_code, forbidden.content)
    assert missing.json() == {"detail": FORBIDDEN}
    assert ran == []


@pytest.mark.parametrize("pk", [10**30, -(10**30), 2**63])
@pytest.mark.parametrize("path", [ReadAnyDoc.name, ReadAnyDoc.name + "/start"])
def test_an_integer_pk_out_of_the_columns_range_answers_422_never_500(path: str, pk: int) -> None:
    with override_backend(InMemoryBackend()):
        response = post(Client(), path, {"doc": pk})
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"] == ["body", "doc"]


def test_a_push_delivery_is_not_asked_to_authorize(docs: dict[str, int], settings: Any) -> None:
    # The run was authorized when it was started; the push queue has no user to ask about.
    settings.TASKS_API_AUTHENTICATION = "tests.unit.test_api.PushQueueKey"
    outcome = execute(Attempt(task_name=ReadDoc.name, params={"doc": docs["b-taxes"]}, run_id="r1"))
    assert outcome.status is TaskStatus.SUCCEEDED
    response = Client().post(
        URL + ReadAnyDoc.name,
        {"doc": docs["b-taxes"]},
        content_type="application/json",
        headers={**PUSH, "X-CloudTasks-TaskName": "d1"},
    )
    assert (response.status_code, response.json()["status"]) == (200, "succeeded")


def test_one_missing_row_among_several_refs_discards_the_run(docs: dict[str, int]) -> None:
    Country.objects.create(code="FR")
    params = {"first": docs["a-notes"], "second": max(docs.values()) + 1, "country": "FR"}
    outcome = execute(Attempt(task_name=UsesTwoRefs.name, params=params, run_id="r2"))
    assert outcome.status is TaskStatus.DISCARDED
    assert outcome.error is not None
    assert outcome.error.type.endswith("ModelNotFoundError")
    assert ran == []
    missing_country = {**params, "second": docs["b-notes"], "country": "DE"}
    assert (
        execute(Attempt(task_name=UsesTwoRefs.name, params=missing_country, run_id="r3")).status
        is TaskStatus.DISCARDED
    )
    assert ran == []


def test_another_caller_cannot_read_a_run_of_a_row_it_may_not_see(docs: dict[str, int]) -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        started = post(client_of("a"), ReadDoc.name + "/start", {"doc": docs["a-payroll"]})
        run_id = started.json()["run_id"]
        backend.run_all()
        by_b = client_of("b").get(f"{URL}runs/{run_id}")
        by_a = client_of("a").get(f"{URL}runs/{run_id}")
        unknown = client_of("b").get(f"{URL}runs/no-such-run")
    assert (by_b.status_code, by_b.content) == (404, unknown.content)
    assert by_a.status_code == 200, by_a.content
    assert by_a.json()["result"] == "content of a-payroll"


class ForgetsParams(InMemoryBackend):
    """A results backend that cannot say which params a run had."""

    def run_params(self, run_id: str) -> Any:
        return None


def test_a_run_whose_params_are_unknown_is_not_readable_when_the_task_authorizes(
    docs: dict[str, int],
) -> None:
    backend = ForgetsParams()
    with override_backend(backend):
        run_id = ReadDoc({"doc": docs["a-notes"]}).start().id
        assert client_of("a").get(f"{URL}runs/{run_id}").status_code == 404  # fails closed


# 2. caller-scoped idempotency keys ------------------------------------------------------------


def test_two_callers_with_the_same_key_get_their_own_runs(docs: dict[str, int]) -> None:
    with override_backend(DatabaseBackend()):
        path = ReadDoc.name + "/start?key=export-2025-06"
        first = post(client_of("a"), path, {"doc": docs["a-payroll"]})
        second = post(client_of("b"), path, {"doc": docs["b-notes"]})
        assert (first.status_code, second.status_code) == (202, 202)
        a_run, b_run = first.json()["run_id"], second.json()["run_id"]
        assert a_run != b_run
        backend = DatabaseBackend()
        assert backend.run_params(a_run) == {"doc": docs["a-payroll"]}
        assert backend.run_params(b_run) == {"doc": docs["b-notes"]}  # B's params kept
        # The same caller, the same key, the same params: the run that holds the key.
        again = post(client_of("a"), path, {"doc": docs["a-payroll"]})
        assert (again.status_code, again.json()["run_id"]) == (202, a_run)


def test_a_key_replayed_with_other_params_answers_409_without_the_other_runs_id(
    docs: dict[str, int],
) -> None:
    with override_backend(DatabaseBackend()):
        path = ReadDoc.name + "/start?key=export"
        first = post(client_of("a"), path, {"doc": docs["a-payroll"]})
        replay = post(client_of("a"), path, {"doc": docs["a-notes"]})
    assert replay.status_code == 409
    assert first.json()["run_id"] not in replay.content.decode()
    assert TaskRun.objects.count() == 1


def test_http_keys_never_meet_the_keys_of_starts_in_code() -> None:
    with override_backend(DatabaseBackend()):
        in_code = StoreText({"text": "server side"}).start(key="invoice-42")
        response = post(Client(), StoreText.name + "/start?key=invoice-42", {"text": "caller"})
        assert response.status_code == 202
        assert response.json()["run_id"] != in_code.id


def test_api_key_scope_chooses_whose_keys_are_shared() -> None:
    with override_backend(DatabaseBackend()):
        path = TenantKeys.name + "/start?key=nightly"
        a = post(client_of("a"), path, {"text": "x"})
        b = post(client_of("b"), path, {"text": "x"})
    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["run_id"] == b.json()["run_id"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"sub": "1", "iss": "https://accounts.google.com"}, {"sub": "2"}),
        ({"email": "a@x.test"}, {"email": "b@x.test"}),
        ("key-of-alice", "key-of-bob"),
        (7, 8),
    ],
)
def test_the_callers_identity_comes_from_the_auths_return_value(first: Any, second: Any) -> None:
    requests = [RequestFactory().post("/"), RequestFactory().post("/")]
    for request, auth in zip(requests, (first, second), strict=True):
        request.auth = auth  # type: ignore[attr-defined]
    identities = [caller_identity(r) for r in requests]
    assert identities[0] != identities[1]
    assert all(identities)


def test_a_session_user_is_an_identity_and_anonymous_callers_share_one() -> None:
    anonymous = RequestFactory().post("/")
    admitted = RequestFactory().post("/")
    admitted.auth = True  # type: ignore[attr-defined]  # an auth that says nothing of who
    admitted.user = User.objects.create(username="c")
    assert caller_identity(anonymous) == ""
    assert caller_identity(admitted).startswith("user:auth.user:")


# 8. NUL characters and database errors at start -----------------------------------------------


@pytest.fixture
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (it refuses NUL): runs in the PostgreSQL pass")


@pytest.mark.usefixtures("_postgresql")
@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("", '{"text": "a\\u0000b"}'),
        ("?key=k%00", '{"text": "a"}'),
    ],
)
def test_a_nul_character_answers_422_where_the_run_store_cannot_keep_it(
    query: str, body: str
) -> None:
    with override_backend(DatabaseBackend()):
        response = Client().post(
            f"{URL}{StoreText.name}/start{query}", body, content_type="application/json"
        )
    assert response.status_code == 422, response.content
    assert TaskRun.objects.count() == 0


def test_an_escaped_backslash_before_u0000_is_no_nul_character() -> None:
    with override_backend(DatabaseBackend()):
        body = '{"text": "C:\\\\u0000"}'  # the text C:\u0000, no NUL in it
        response = Client().post(
            f"{URL}{StoreText.name}/start", body, content_type="application/json"
        )
    assert response.status_code == 202, response.content
    assert TaskRun.objects.get().params == {"text": "C:\\u0000"}


class KeepsNulBackend(DatabaseBackend):
    """Says it keeps NUL characters, so PostgreSQL's own refusal reaches the start view."""

    keeps_nul_characters = True  # type: ignore[assignment]


@pytest.mark.usefixtures("_postgresql")
def test_a_database_error_at_start_answers_503_never_500() -> None:
    with override_backend(KeepsNulBackend()):
        response = Client().post(
            f"{URL}{StoreText.name}/start",
            '{"text": "a\\u0000b"}',
            content_type="application/json",
        )
    assert response.status_code == 503, response.content
    assert "Could not start the task" in response.json()["detail"]
