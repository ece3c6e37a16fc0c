"""Lifecycle hooks: order with signals, async hooks, a raising hook is logged with the run id
(every backend calls them: see the contract suite)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import ImmediateBackend
from django_generic_tasks.core.registry import registry
from django_generic_tasks.signals import task_finished

order: list[str] = []


class Nothing(BaseModel):
    pass


class OrderedTask(tasks.Task[Nothing]):
    name = "tests.hooks.ordered"

    def run(self) -> int:
        order.append("run")
        return 3

    async def on_success(self, result: Any) -> None:
        order.append(f"on_success {result}")


class BrokenHookTask(tasks.Task[Nothing]):
    name = "tests.hooks.broken"
    max_attempts = 3

    def run(self) -> int:
        return 1

    def on_success(self, result: Any) -> None:
        raise RuntimeError("hook bug")


class PlainTask(tasks.Task[Nothing]):
    name = "tests.hooks.plain"

    def run(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    order.clear()
    for task in (OrderedTask, BrokenHookTask, PlainTask):
        registry.register(task)
    yield
    for task in (OrderedTask, BrokenHookTask, PlainTask):
        registry.unregister(task.name)


def test_hook_runs_after_the_outcome_and_before_task_finished() -> None:
    def receiver(outcome: Any, **_: Any) -> None:
        order.append(f"task_finished {outcome.status}")

    task_finished.connect(receiver, weak=False)
    try:
        handle = OrderedTask({}).start(backend=ImmediateBackend())
    finally:
        task_finished.disconnect(receiver)
    assert order == ["run", "on_success 3", "task_finished succeeded"]
    assert handle.result == 3


def test_raising_hook_is_logged_with_the_run_id_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="django_generic_tasks"):
        handle = BrokenHookTask({}).start(backend=ImmediateBackend())
    assert (handle.status, handle.result, handle.attempts) == (tasks.TaskStatus.SUCCEEDED, 1, 1)
    [record] = [r for r in caplog.records if "on_success raised" in r.getMessage()]
    assert handle.id in record.getMessage()
    assert record.run_id == handle.id  # type: ignore[attr-defined]
    assert record.exc_info is not None


def test_tasks_without_hooks_skip_them() -> None:
    assert (PlainTask._has_hooks, OrderedTask._has_hooks) == (False, True)
