"""Workflows on the in-process backends (ImmediateBackend, InMemoryBackend): the same rules,
advanced by ``retry.settle()``."""

from __future__ import annotations

import pytest
from django.db import transaction

import django_generic_tasks as tasks
from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend, ThreadingBackend
from tests.unit import workflow_tasks as wt


@pytest.fixture(autouse=True)
def _clear() -> None:
    wt.seen.clear()


def test_a_long_chain_on_immediate_runs_without_nesting_a_call_per_step() -> None:
    steps = [wt.Double, wt.AddOne] * 300  # 601 steps: deeper than the recursion limit allows
    handle = tasks.chain(wt.AddOne(wt.Number(n=0)), *steps).start(backend=ImmediateBackend())
    assert handle.status == "succeeded"
    assert len(handle.run_ids) == 601
    assert handle.wait() > 0


def test_a_retried_step_goes_on_once_it_succeeds() -> None:
    class Flaky(tasks.Task[wt.Wrapped, int]):
        name = "tests.wf.flaky"
        max_attempts = 3
        backoff_base = 0.0
        tries = 0

        def run(self) -> int:
            type(self).tries += 1
            if type(self).tries < 3:
                raise RuntimeError("not yet")
            return self.params.value

    try:
        handle = tasks.chain(wt.AddOne(wt.Number(n=1)), Flaky, wt.Double)
        assert handle.start(backend=ImmediateBackend()).wait() == wt.Number(n=4)
        assert Flaky.tries == 3
    finally:
        tasks.registry.unregister(Flaky.name)


def test_a_group_on_in_memory_runs_with_run_all_and_its_callback_once() -> None:
    backend = InMemoryBackend()
    handle = (
        tasks.group([wt.AddOne(wt.Number(n=n)) for n in (2, 0, 1)])
        .then(wt.Total)
        .start(backend=backend)
    )
    assert handle.status == "running"
    assert len(backend.pending()) == 3
    backend.run_all()
    assert handle.wait() == 3 + 1 + 2
    assert wt.seen == ["total [3, 1, 2]"]


@pytest.mark.django_db(transaction=True)
def test_a_chain_on_immediate_inside_a_transaction_starts_after_commit() -> None:
    with transaction.atomic():
        handle = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=ImmediateBackend())
        assert handle.status == "running"
        assert handle.run_ids[0]
    assert handle.wait() == wt.Number(n=4)


def test_backends_without_workflows_refuse_them() -> None:
    backend = ThreadingBackend()
    try:
        with pytest.raises(tasks.UnsupportedOptionError, match="cannot run workflows"):
            tasks.chain(wt.AddOne(wt.Number(n=1))).start(backend=backend)
        with pytest.raises(tasks.UnsupportedOptionError):
            tasks.group([wt.AddOne(wt.Number(n=1))]).start(backend=backend)
    finally:
        backend.close()


def test_an_unknown_workflow_id_is_not_found() -> None:
    with pytest.raises(tasks.RunNotFoundError):
        tasks.WorkflowHandle("nope", ImmediateBackend()).refresh()


@pytest.mark.parametrize(
    "name",
    ["ThreadingBackend", "CloudTasksBackend", "CeleryBackend", "DjangoTasksBackend"],
)
def test_backends_that_declare_no_workflows_keep_the_refusing_operations(name: str) -> None:
    from django_generic_tasks.backends.base import BaseBackend
    from django_generic_tasks.backends.capabilities import backend_class

    cls = backend_class(name)
    assert cls.supports_workflows is False
    assert cls.supports_continuations is False
    for operation in ("start_workflow", "join_batch", "close_batch"):
        assert getattr(cls, operation) is getattr(BaseBackend, operation), operation
    with pytest.raises(tasks.UnsupportedOptionError):
        BaseBackend.start_workflow(cls.__new__(cls), None)  # type: ignore[arg-type]
