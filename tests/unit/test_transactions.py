"""start() inside transaction.atomic(): hand-over after commit, never on rollback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from django_generic_tasks import TaskStatus
from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend, ThreadingBackend
from django_generic_tasks.backends.base import BaseBackend
from tests.testapp.tasks import AddTask, calls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["immediate", "threading"])
def backend(request: pytest.FixtureRequest) -> Iterator[BaseBackend]:
    if request.param == "immediate":
        yield ImmediateBackend()
        return
    threaded = ThreadingBackend(max_workers=1)
    yield threaded
    threaded.close()


def settle(backend: BaseBackend) -> None:
    if isinstance(backend, ThreadingBackend):
        assert backend.wait_idle(30, include_scheduled=True)


def test_start_inside_atomic_hands_over_only_after_commit(backend: BaseBackend) -> None:
    with transaction.atomic():
        handle = AddTask({"a": 1}).start(backend=backend)
        assert handle.status is TaskStatus.PENDING
        settle(backend)
        assert calls == []
    settle(backend)
    assert calls == [("tests.add", 1)]
    assert handle.status is not TaskStatus.PENDING


def test_start_inside_a_nested_atomic_waits_for_the_outermost_commit(
    backend: BaseBackend,
) -> None:
    with transaction.atomic():
        with transaction.atomic():
            AddTask({"a": 1}).start(backend=backend)
        settle(backend)
        assert calls == []
    settle(backend)
    assert calls == [("tests.add", 1)]


def test_start_inside_a_rolled_back_atomic_never_hands_over(backend: BaseBackend) -> None:
    with transaction.atomic():
        handle = AddTask({"a": 1}).start(backend=backend)
        transaction.set_rollback(True)
    settle(backend)
    assert calls == []
    assert handle.status is TaskStatus.PENDING


def test_a_rolled_back_savepoint_drops_only_its_own_starts(backend: BaseBackend) -> None:
    with transaction.atomic():
        AddTask({"a": 1}).start(backend=backend)
        with transaction.atomic():
            AddTask({"a": 2}).start(backend=backend)
            transaction.set_rollback(True)
    settle(backend)
    assert calls == [("tests.add", 1)]


def test_on_commit_false_hands_over_at_once(backend: BaseBackend) -> None:
    with transaction.atomic():
        AddTask({"a": 1}).start(backend=backend, on_commit=False)
        settle(backend)
        assert calls == [("tests.add", 1)]
        transaction.set_rollback(True)
    assert calls == [("tests.add", 1)]


def test_start_many_inside_atomic_hands_over_after_commit(backend: BaseBackend) -> None:
    with transaction.atomic():
        handles = AddTask.start_many([{"a": 1}, {"a": 2}], backend=backend)
        assert {h.status for h in handles} == {TaskStatus.PENDING}
    settle(backend)
    assert sorted(calls) == [("tests.add", 1), ("tests.add", 2)]
    assert TaskStatus.PENDING not in {h.status for h in handles}


def test_start_many_inside_a_rolled_back_atomic_never_hands_over(backend: BaseBackend) -> None:
    with transaction.atomic():
        AddTask.start_many([{"a": 1}, {"a": 2}], backend=backend)
        transaction.set_rollback(True)
    settle(backend)
    assert calls == []


def test_outside_a_transaction_start_hands_over_at_once(backend: BaseBackend) -> None:
    AddTask({"a": 1}).start(backend=backend)
    settle(backend)
    assert calls == [("tests.add", 1)]


def test_a_backend_that_enqueues_in_the_transaction_gets_the_run_at_once() -> None:
    memory = InMemoryBackend()
    with transaction.atomic():
        AddTask({"a": 1}).start(backend=memory)
        assert len(memory.pending()) == 1
        transaction.set_rollback(True)
