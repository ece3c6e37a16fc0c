"""``self.context``: a task's view of its run, when ``run()`` is called by hand and over HTTP
(every backend is covered by the contract suite)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

import django_generic_tasks as tasks
from django_generic_tasks.signals import task_started
from tests.testapp.tasks import AddTask


def test_run_called_directly_gets_a_fresh_run_id_and_attempt_one() -> None:
    first, second = AddTask({"a": 1}), AddTask({"a": 1})
    assert isinstance(first.context, tasks.RunContext)
    assert first.context is first.context  # one run per instance
    assert first.context.run_id != second.context.run_id
    assert (first.context.attempt, first.context.max_attempts) == (1, AddTask.max_attempts)
    assert (first.context.queue, first.context.backend) == (AddTask.queue, "direct")
    assert first.context.enqueued_at is not None


def test_context_is_frozen() -> None:
    context = AddTask({"a": 1}).context
    with pytest.raises(AttributeError):
        context.attempt = 2  # type: ignore[misc]


@pytest.fixture
def seen() -> Iterator[list[tasks.RunContext]]:
    contexts: list[tasks.RunContext] = []

    def receiver(task: Any, **_: Any) -> None:
        contexts.append(task.context)

    task_started.connect(receiver, weak=False)
    yield contexts
    task_started.disconnect(receiver)


@pytest.mark.django_db
def test_http_endpoint_run_has_a_context(seen: list[tasks.RunContext]) -> None:
    response = Client().post("/api/tasks/tests.add", {"a": 2}, content_type="application/json")
    assert response.status_code == 200
    [context] = seen
    assert (context.attempt, context.backend, context.queue) == (1, "http", AddTask.queue)
    assert context.run_id == response.json()["run_id"]
