"""``capture_tasks`` / ``InMemoryBackend`` model transactions as ``DatabaseBackend`` does.

A start is captured at once; when the atomic block it was made in (or one around it) rolls
back, it is dropped, as the run's row would be. Inside a transaction that stays open (pytest's
``django_db`` and Django's ``TestCase`` wrap each test in one that never commits), starts stay
visible.
"""

from __future__ import annotations

from contextlib import suppress

import pytest
from django.db import transaction
from django.test import TestCase
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import InMemoryBackend
from django_generic_tasks.testing import capture_tasks
from tests.testapp.tasks import AddTask, calls
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")


class Order(BaseModel):
    """An order number."""

    number: int


class ChargeCard(tasks.Task[Order]):
    """Charges the order's card."""

    name = "tests.testing_transactions.charge"

    def run(self) -> None:
        calls.append((self.name, self.params.number))


class SendReceipt(tasks.Task[Order]):
    """Mails the order's receipt."""

    name = "tests.testing_transactions.receipt"

    def run(self) -> None:
        calls.append((self.name, self.params.number))


def place_order(number: int) -> None:
    ChargeCard({"number": number}).start()
    SendReceipt({"number": number}).start()


class PlaceOrderThenRollBack(tasks.Task[Order]):
    """Starts a charge inside a block that it then rolls back."""

    name = "tests.testing_transactions.rolls_back"

    def run(self) -> None:
        with suppress(RuntimeError), transaction.atomic():
            ChargeCard({"number": self.params.number}).start()
            raise RuntimeError("order rejected")


@pytest.mark.django_db(transaction=True)
def test_starts_in_a_rolled_back_transaction_are_not_captured() -> None:
    with capture_tasks() as captured:
        with suppress(RuntimeError), transaction.atomic():
            place_order(1)
            assert len(captured) == 2  # captured at start(), like a row in the transaction
            raise RuntimeError
        captured.assert_not_started()
        assert captured.run_all() == []
    assert calls == []
    assert [r.task_name for r in captured.backend.rolled_back] == [
        ChargeCard.name,
        SendReceipt.name,
    ]


@pytest.mark.django_db(transaction=True)
def test_starts_in_a_committed_transaction_stay_captured() -> None:
    with capture_tasks() as captured:
        with transaction.atomic():
            place_order(2)
        captured.assert_started(ChargeCard, {"number": 2})
        captured.run_all()
    assert calls == [(ChargeCard.name, 2), (SendReceipt.name, 2)]


@pytest.mark.django_db(transaction=True)
def test_set_rollback_drops_the_blocks_starts() -> None:
    with capture_tasks() as captured:
        with transaction.atomic():
            place_order(3)
            transaction.set_rollback(True)
        captured.assert_not_started()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_drops_only_its_own_starts_when_the_outer_block_commits() -> None:
    with capture_tasks() as captured:
        with transaction.atomic():
            ChargeCard({"number": 1}).start()
            with suppress(RuntimeError), transaction.atomic():
                SendReceipt({"number": 1}).start()
                with transaction.atomic():
                    AddTask({"a": 1}).start()  # committed into the savepoint, then rolled back
                raise RuntimeError
            SendReceipt({"number": 2}).start()
        assert [s.task_class for s in captured.started()] == [ChargeCard, SendReceipt]
        captured.assert_started(SendReceipt, {"number": 2}, count=1)
        captured.run_all()
    assert calls == [(ChargeCard.name, 1), (SendReceipt.name, 2)]


@pytest.mark.django_db(transaction=True)
def test_an_outer_rollback_drops_starts_of_inner_blocks_that_succeeded() -> None:
    with capture_tasks() as captured:
        with transaction.atomic():
            with transaction.atomic():
                place_order(4)
            transaction.set_rollback(True)
        captured.assert_not_started()


@pytest.mark.django_db(transaction=True)
def test_run_all_never_runs_a_start_that_a_run_rolled_back() -> None:
    with capture_tasks() as captured:
        PlaceOrderThenRollBack({"number": 5}).start()
        outcomes = captured.run_all()
    assert [o.task_name for o in outcomes] == [PlaceOrderThenRollBack.name]
    assert calls == []


@pytest.mark.django_db(transaction=True)
def test_on_commit_false_does_not_keep_a_start_that_rolled_back() -> None:
    # DatabaseBackend writes the run in the transaction either way; the capture does the same.
    with capture_tasks() as captured:
        with transaction.atomic():
            ChargeCard({"number": 6}).start(on_commit=False)
            transaction.set_rollback(True)
        captured.assert_not_started()


@pytest.mark.django_db(transaction=True)
def test_a_key_is_free_again_once_its_start_rolled_back() -> None:
    with capture_tasks() as captured:
        with transaction.atomic():
            first = ChargeCard({"number": 7}).start(key="order-7")
            transaction.set_rollback(True)
        second = ChargeCard({"number": 7}).start(key="order-7")
        assert second.id != first.id
        assert [s.run_id for s in captured.started()] == [second.id]
        with pytest.raises(KeyError):
            captured.backend.get_result(first.id)


@pytest.mark.django_db(transaction=True)
def test_assert_started_says_when_matching_starts_were_rolled_back() -> None:
    with capture_tasks() as captured:
        with transaction.atomic():
            ChargeCard({"number": 8}).start()
            transaction.set_rollback(True)
        with pytest.raises(AssertionError, match=r"1 more start\(s\) were dropped: the trans"):
            captured.assert_started(ChargeCard)


@pytest.mark.django_db
def test_starts_inside_the_tests_own_transaction_stay_visible() -> None:
    from django.db import connection

    assert connection.in_atomic_block  # the test's transaction never commits
    with capture_tasks() as captured:
        place_order(9)
        with suppress(RuntimeError), transaction.atomic():
            AddTask({"a": 9}).start()
            raise RuntimeError
        with transaction.atomic():
            ChargeCard({"number": 10}).start()
        captured.assert_started(ChargeCard, count=2)
        captured.assert_started(SendReceipt, {"number": 9})
        captured.assert_not_started(AddTask)
        captured.run_all()
    assert sorted(calls) == [(ChargeCard.name, 9), (ChargeCard.name, 10), (SendReceipt.name, 9)]


def test_outside_any_transaction_starts_are_captured_as_before() -> None:
    memory = InMemoryBackend()
    ChargeCard({"number": 11}).start(backend=memory)
    assert len(memory.pending()) == 1


class CaptureInsideDjangoTestCase(TestCase):
    """Django's ``TestCase`` runs each test in an atomic block that it rolls back at the end."""

    def test_starts_are_visible_although_the_test_never_commits(self) -> None:
        with capture_tasks() as captured:
            with transaction.atomic():
                place_order(12)
            captured.assert_started(ChargeCard, {"number": 12})
            captured.assert_started(SendReceipt, {"number": 12})
            captured.run_all()
        assert calls == [(ChargeCard.name, 12), (SendReceipt.name, 12)]

    def test_a_rolled_back_block_inside_the_test_drops_its_starts(self) -> None:
        with capture_tasks() as captured:
            ChargeCard({"number": 13}).start()
            with suppress(RuntimeError), transaction.atomic():
                SendReceipt({"number": 13}).start()
                raise RuntimeError
            captured.assert_started(ChargeCard, {"number": 13})
            captured.assert_not_started(SendReceipt)
