"""Which tasks the router serves (issue 21, item 0): ``api_exposed`` per task, and
``TASKS_API_EXPOSED_BY_DEFAULT = False`` making exposure opt-in for a whole project."""

from __future__ import annotations

import itertools
import sys
import types
from typing import Any

import pytest
from django.test import Client
from django.urls import path
from ninja import NinjaAPI
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.api import TasksRouter
from django_generic_tasks.backends import InMemoryBackend
from django_generic_tasks.conf import override_backend

pytestmark = pytest.mark.django_db

ran: list[str] = []
_urlconfs = itertools.count()


class MailParams(BaseModel):
    to: str


class SendMail(tasks.Task[MailParams]):
    """Sends mail to an address the caller chooses: no endpoint, ever."""

    name = "tests.exposure.send_mail"
    api_exposed = False

    def run(self) -> None:
        ran.append(self.params.to)


class Ping(tasks.Task[MailParams]):
    """Exposed even when the project makes exposure opt-in."""

    name = "tests.exposure.ping"
    api_exposed = True

    def run(self) -> str:
        return "pong"


def mount_fresh_router() -> str:
    """Mount a new ``TasksRouter`` under a URLconf of its own (built with today's settings);
    return its module name for ``ROOT_URLCONF``."""
    name = f"tests.unit._exposure_urls_{next(_urlconfs)}"
    api = NinjaAPI(urls_namespace=name)
    api.add_router("/tasks/", TasksRouter())
    module = types.ModuleType(name)
    module.urlpatterns = [path("x/", api.urls)]  # type: ignore[attr-defined]
    sys.modules[name] = module
    return name


def post(path: str, body: Any) -> Any:
    return Client().post(path, body, content_type="application/json")


@pytest.mark.parametrize("suffix", ["", "/start"])
def test_a_task_with_api_exposed_false_has_no_endpoint(suffix: str) -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        response = post(f"/api/tasks/{SendMail.name}{suffix}", {"to": "victim@x.test"})
        unknown = post(f"/api/tasks/tests.exposure.nothing{suffix}", {"to": "x"})
    assert response.status_code == 404
    # Answered as if no such task existed: the name is not confirmed.
    assert response.json()["detail"] == unknown.json()["detail"].replace(
        "tests.exposure.nothing", SendMail.name
    )
    assert (ran, backend.pending()) == ([], [])
    paths = Client().get("/api/openapi.json").json()["paths"]
    assert not [p for p in paths if SendMail.name in p]
    assert [p for p in paths if Ping.name in p]


def test_runs_of_a_task_that_is_not_exposed_are_not_readable() -> None:
    backend = InMemoryBackend()
    with override_backend(backend):
        handle = SendMail({"to": "a@x.test"}).start()
        backend.run_all()
        response = Client().get(f"/api/tasks/runs/{handle.id}")
    assert response.status_code == 404


def test_exposure_can_be_made_opt_in_for_the_whole_project(settings: Any) -> None:
    settings.TASKS_API_EXPOSED_BY_DEFAULT = False
    settings.ROOT_URLCONF = mount_fresh_router()
    paths = Client().get("/x/openapi.json").json()["paths"]
    assert sorted(p for p in paths if "/tasks/tests." in p) == [
        f"/x/tasks/{Ping.name}",
        f"/x/tasks/{Ping.name}/start",
    ]
    assert post("/x/tasks/tests.add", {"a": 1}).status_code == 404
    assert post(f"/x/tasks/{Ping.name}", {"to": "x"}).json()["result"] == "pong"
