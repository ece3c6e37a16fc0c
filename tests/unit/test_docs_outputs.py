"""Printed outputs in the docs match what the code prints (issue 22, item 14).

Every JSON response shown in a ``console``/``text`` block of the docs (an object that starts
with ``{"run_id"``) must have the keys, in order, and the values of the real response of the
same endpoint for the example's e-mail task; only ``run_id`` may differ. Validation errors
shown (``"loc": [...]``, often abridged with ``…``) must name the real error locations.
"""

from __future__ import annotations

import json
import re
import sys
import types
import uuid
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import path
from ninja import NinjaAPI
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.api import TasksRouter
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.docs_examples import ROOT, blocks, pages
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")

NAME = "my_app.tasks.EmailNotificationTask"
BODY = {"subject": "Hi", "content": "Hello", "recipients": ["ada@example.com"]}
VARYING = {"run_id", "history"}  # the history carries times


class EmailNotificationParams(BaseModel):
    subject: str
    content: str
    recipients: list[str]


def documented_outputs() -> list[tuple[str, str]]:
    """(where, text) of every console/text block of the docs and the README."""
    found = [
        (block.where, block.code)
        for page in [*pages(), ROOT / "README.md"]
        for block in blocks(page)
        if block.language in {"console", "text", "json"}
    ]
    return [item for item in found if '{"run_id"' in item[1] or '"loc"' in item[1]]


def objects(text: str) -> list[Any]:
    """The complete JSON objects in ``text`` that start with ``{"run_id"``."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r'\{"run_id"', text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"not JSON (abridge only error lists): {text[match.start() :]}"
            ) from exc
        found.append(value)
    return found


def urlconf() -> str:
    """A URLconf of its own, mounting a router built now (the suite's router was built before
    this test's task was defined, so it has no endpoint for it)."""
    name = f"tests_docs_outputs_urls_{uuid.uuid4().hex[:8]}"
    api = NinjaAPI(urls_namespace=name)
    api.add_router("/tasks/", TasksRouter())
    module = types.ModuleType(name)
    module.urlpatterns = [path("api/", api.urls)]  # type: ignore[attr-defined]
    sys.modules[name] = module
    return name


@pytest.fixture
def real() -> dict[str, Any]:
    """The real responses: a direct run, a 422, a start and its run once a worker ran it."""

    class EmailNotificationTask(tasks.Task[EmailNotificationParams]):
        """The example's task (``example/my_app/tasks.py``), sending one message per call."""

        name = NAME
        max_attempts = 3

        def run(self) -> int:
            return 1

    client = Client()
    url = f"/api/tasks/{NAME}"
    with override_settings(
        TASKS_BACKEND="django_generic_tasks.backends.DatabaseBackend", ROOT_URLCONF=urlconf()
    ):
        ran = client.post(url, BODY, content_type="application/json")
        invalid = client.post(url, {"subject": 1}, content_type="application/json")
        started = client.post(url + "/start", BODY, content_type="application/json")
        Worker(WorkerOptions(once=True, concurrency=1)).run(install_signals=False)
        assert started.status_code == 202, started.content
        run = client.get(f"/api/tasks/runs/{started.json()['run_id']}")
    assert (ran.status_code, invalid.status_code, started.status_code) == (200, 422, 202)
    return {
        "responses": [ran.json(), started.json(), run.json()],
        "locs": [error["loc"] for error in invalid.json()["detail"]],
    }


@pytest.mark.django_db(transaction=True)
def test_printed_json_responses_are_what_the_endpoints_answer(real: dict[str, Any]) -> None:
    shown = [(where, obj) for where, text in documented_outputs() for obj in objects(text)]
    assert len(shown) >= 4, "the docs' response examples were not found"
    by_keys = {tuple(response): response for response in real["responses"]}
    for where, obj in shown:
        response = by_keys.get(tuple(obj))
        assert response is not None, (
            f"{where}: keys {list(obj)} are those of no response; real ones: "
            f"{[list(keys) for keys in by_keys]}"
        )
        expected = {k: v for k, v in response.items() if k not in VARYING}
        assert {k: v for k, v in obj.items() if k not in VARYING} == expected, where


@pytest.mark.django_db(transaction=True)
def test_printed_validation_errors_name_the_real_locations(real: dict[str, Any]) -> None:
    locs = [
        (where, json.loads(loc))
        for where, text in documented_outputs()
        for loc in re.findall(r'"loc": (\[[^\]]*\])', text)
    ]
    assert locs, "the docs' validation error example was not found"
    for where, loc in locs:
        assert loc in real["locs"], f"{where}: loc {loc} is not one of {real['locs']}"


CELERY_FEATURES = (
    "chain",
    "group",
    "chord",
    "rate_limit",
    "time_limit",
    "soft_time_limit",
    "revoke",
    "task_routes",
    "self.retry(countdown=",
    "AsyncResult(id)",
)


def test_the_celery_guide_maps_every_celery_feature_to_what_exists_or_not_yet() -> None:
    page = (ROOT / "docs" / "how-to" / "migrate-from-celery.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| `")
    }
    for feature in CELERY_FEATURES:
        row = next((line for first, line in rows.items() if feature in first), None)
        assert row is not None, f"the Celery guide's table has no row for {feature}"
        mapped = row.split("|")[2]
        assert mapped.strip(), f"{feature}: no mapping"
    named = ("get_handle", "TaskTimeoutError", "check_cancelled", "start_many", "backoff")
    for name in named:
        assert name in page
        assert hasattr(tasks, name) or hasattr(tasks.Task, name), name


def test_the_testing_page_says_what_started_and_pending_hold_around_run_all() -> None:
    page = (ROOT / "docs" / "how-to" / "testing.md").read_text(encoding="utf-8")
    assert "`started()` keeps every start, before and after `run_all()`" in page
    assert "`pending()` is what `run_all()` has not run yet" in page
