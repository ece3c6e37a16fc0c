"""The backend contract: every backend in ``harnesses.HARNESSES`` must pass these tests.

Start, async, bulk start, params round trip, model references, delay/eta, retries, discard,
key, priority, on-commit, errors, results. Options a backend's capability flags say it cannot
honour must raise ``UnsupportedOptionError`` at ``start()`` and run nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import override_settings

from django_generic_tasks import (
    ResultNotAvailableError,
    RunFailedError,
    TaskStatus,
    UnsupportedOptionError,
)
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.status import new_run_id
from tests.contract.harnesses import BackendHarness, HarnessFactory, harness_params
from tests.contract.tasks import (
    ContractAsync,
    ContractContext,
    ContractDiscard,
    ContractFlaky,
    ContractHooks,
    ContractModelRef,
    ContractRecord,
    ContractTyped,
    Quote,
    RecordParams,
)
from tests.testapp.models import Customer

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 30.0


@pytest.fixture(params=harness_params())
def harness(request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    factory: HarnessFactory = request.param
    with factory.make() as harness:
        yield harness


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex


def flag(harness: BackendHarness, name: str) -> bool:
    return bool(getattr(harness.backend, name))


def test_start_runs_the_task_once(harness: BackendHarness, token: str) -> None:
    handle = ContractRecord({"token": token, "value": "v"}).start(backend=harness.backend)
    assert handle.name == "contract.record"
    assert handle.id
    assert isinstance(handle.status, TaskStatus)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == 1


def test_async_tasks_are_awaited(harness: BackendHarness, token: str) -> None:
    ContractAsync({"token": token}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == 1


def test_start_many_runs_each_once(harness: BackendHarness, token: str) -> None:
    tokens = [f"{token}-{n}" for n in range(5)]
    handles = ContractRecord.start_many([{"token": t} for t in tokens], backend=harness.backend)
    assert len(handles) == 5
    assert len({h.id for h in handles}) == 5
    harness.drain(TIMEOUT)
    assert [harness.ran(t) for t in tokens] == [1] * 5


def test_params_arrive_exactly(harness: BackendHarness, token: str) -> None:
    when = datetime(2030, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)
    params = RecordParams(token=token, value="é ✓", when=when, amount=Decimal("12.50"))
    ContractRecord(params).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    (entry,) = harness.calls(token)
    assert RecordParams.model_validate(entry["params"]) == params
    assert entry["params"]["amount"] == "12.50"


def test_a_model_ref_param_arrives_as_the_loaded_instance(
    harness: BackendHarness, token: str
) -> None:
    customer = Customer.objects.create(name=f"Ann {token}")
    customer.name = "not saved"  # only the pk travels: the run loads the row as stored
    handle = ContractModelRef({"token": token, "customer": customer}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    (entry,) = harness.calls(token)
    assert (entry["type"], entry["pk"], entry["customer"]) == (
        "Customer",
        customer.pk,
        f"Ann {token}",
    )
    if flag(harness, "supports_results"):
        assert handle.refresh().status is TaskStatus.SUCCEEDED
        assert handle.result == f"Ann {token}"


def test_a_model_ref_to_a_deleted_row_discards_the_run(harness: BackendHarness, token: str) -> None:
    customer = Customer.objects.create(name="Bob")
    pk = customer.pk
    task = ContractModelRef({"token": token, "customer": customer})
    Customer.objects.filter(pk=pk).delete()  # gone before the run starts (another process)
    handle = task.start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == 0
    (entry,) = harness.calls(token)  # on_discard, once: not retried, not failed
    assert entry["kind"] == "discarded"
    assert entry["error"] == "django_generic_tasks.exceptions.ModelNotFoundError"
    assert f"Customer with pk {pk}" in entry["message"]
    if flag(harness, "supports_results"):
        assert handle.refresh().status is TaskStatus.DISCARDED
        assert handle.error is not None
        assert handle.error.type == entry["error"]


def test_delay_is_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    task = ContractRecord({"token": token})
    if not flag(harness, "supports_defer"):
        with pytest.raises(UnsupportedOptionError):
            task.start(delay=timedelta(milliseconds=200), backend=harness.backend)
        harness.drain(TIMEOUT)
        assert harness.ran(token) == 0
        return
    due = time.time() + 0.2
    task.start(delay=timedelta(milliseconds=200), backend=harness.backend)
    harness.drain(TIMEOUT)
    (entry,) = harness.calls(token)
    assert entry["at"] >= due - 0.001


def test_eta_is_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    eta = datetime.now(UTC) + timedelta(milliseconds=200)
    task = ContractRecord({"token": token})
    if not flag(harness, "supports_defer"):
        with pytest.raises(UnsupportedOptionError):
            task.start(eta=eta, backend=harness.backend)
        assert harness.ran(token) == 0
        return
    task.start(eta=eta, backend=harness.backend)
    harness.drain(TIMEOUT)
    (entry,) = harness.calls(token)
    assert entry["at"] >= eta.timestamp() - 0.001


def test_failed_attempts_are_retried_until_success(harness: BackendHarness, token: str) -> None:
    ContractFlaky({"token": token, "failures": 2}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    if flag(harness, "supports_retries"):
        assert (harness.attempts(token), harness.ran(token)) == (3, 1)
    else:
        assert (harness.attempts(token), harness.ran(token)) == (1, 0)


def test_retries_stop_at_max_attempts(harness: BackendHarness, token: str) -> None:
    ContractFlaky({"token": token, "failures": 99}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    expected = ContractFlaky.max_attempts if flag(harness, "supports_retries") else 1
    assert (harness.attempts(token), harness.ran(token)) == (expected, 0)


def test_a_user_middleware_sees_every_attempt_and_how_it_ended(
    harness: BackendHarness, token: str
) -> None:
    with override_settings(TASKS_MIDDLEWARE=["tests.contract.tasks.JournalAttempts"]):
        handle = ContractFlaky({"token": token, "failures": 1}).start(backend=harness.backend)
        harness.drain(TIMEOUT)
    seen = [e for e in harness.calls(token) if e["kind"] == "middleware"]
    if flag(harness, "supports_retries"):
        expected = [(1, "failed", True), (2, "succeeded", False)]
    else:
        expected = [(1, "failed", True)]
    assert [(e["attempt"], e["status"], e["will_retry"]) for e in seen] == expected
    assert {(e["run_id"], e["backend"]) for e in seen} == {
        (handle.id, type(harness.backend).__name__)
    }


def test_run_sees_its_context_on_every_attempt(harness: BackendHarness, token: str) -> None:
    handle = ContractContext({"token": token}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    attempts = [e for e in harness.calls(token) if e["kind"] == "attempt"]
    expected = [1, 2] if flag(harness, "supports_retries") else [1]
    assert [e["attempt"] for e in attempts] == expected
    for entry in attempts:
        assert entry["run_id"] == handle.id
        assert entry["max_attempts"] == ContractContext.max_attempts
        assert entry["queue"] == ContractContext.queue
        assert entry["backend"] == type(harness.backend).__name__
        assert entry["enqueued_at"] is not None
        assert entry["enqueued_at"] <= entry["at"]
        assert entry["same"] is True


def hooks(harness: BackendHarness, token: str) -> list[tuple[str, int]]:
    return [(e["hook"], e["attempt"]) for e in harness.calls(token) if e["kind"] == "hook"]


def test_on_success_is_called_once_with_the_result(harness: BackendHarness, token: str) -> None:
    ContractHooks({"token": token}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert hooks(harness, token) == [("on_success", 1)]
    [entry] = [e for e in harness.calls(token) if e["kind"] == "hook"]
    assert entry["result"] == "done"


def test_on_retry_then_on_failure_after_the_last_attempt(
    harness: BackendHarness, token: str
) -> None:
    ContractHooks({"token": token, "failures": 99}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    if flag(harness, "supports_retries"):
        assert hooks(harness, token) == [("on_retry", 1), ("on_failure", 2)]
        [retry] = [e for e in harness.calls(token) if e.get("hook") == "on_retry"]
        assert retry["has_retry_at"] is True
    else:
        assert hooks(harness, token)[-1:] == [("on_failure", 1)]


def test_on_retry_then_on_success(harness: BackendHarness, token: str) -> None:
    ContractHooks({"token": token, "failures": 1}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    if flag(harness, "supports_retries"):
        assert hooks(harness, token) == [("on_retry", 1), ("on_success", 2)]


def test_on_discard_is_called_once(harness: BackendHarness, token: str) -> None:
    ContractHooks({"token": token, "discard": True}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert hooks(harness, token) == [("on_discard", 1)]


def test_a_raising_hook_changes_no_outcome(harness: BackendHarness, token: str) -> None:
    handle = ContractHooks({"token": token, "hooks_raise": True}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert hooks(harness, token) == [("on_success", 1)]
    assert harness.attempts(token) == 1  # not retried
    if flag(harness, "supports_results"):
        assert handle.refresh().status is TaskStatus.SUCCEEDED
        assert handle.result == "done"


def test_discard_on_is_not_retried(harness: BackendHarness, token: str) -> None:
    ContractDiscard({"token": token}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert harness.attempts(token) == 1


def test_key_deduplicates_or_is_refused(harness: BackendHarness, token: str) -> None:
    first_task = ContractRecord({"token": token, "value": "first"})
    if not flag(harness, "supports_key"):
        with pytest.raises(UnsupportedOptionError):
            first_task.start(key=token, backend=harness.backend)
        harness.drain(TIMEOUT)
        assert harness.ran(token) == 0
        return
    first = first_task.start(key=token, backend=harness.backend)
    second = ContractRecord({"token": token, "value": "second"}).start(
        key=token, backend=harness.backend
    )
    assert second.id == first.id
    harness.drain(TIMEOUT)
    (entry,) = harness.calls(token)
    assert entry["params"]["value"] == "first"


def test_priority_is_accepted_or_refused(harness: BackendHarness, token: str) -> None:
    task = ContractRecord({"token": token})
    if not flag(harness, "supports_priority"):
        with pytest.raises(UnsupportedOptionError):
            task.start(priority=10, backend=harness.backend)
        return
    task.start(priority=10, backend=harness.backend)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == 1


def test_start_in_a_committed_transaction_runs_once(harness: BackendHarness, token: str) -> None:
    with transaction.atomic():
        ContractRecord({"token": token}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == 1


def test_start_in_a_rolled_back_transaction_never_runs(harness: BackendHarness, token: str) -> None:
    with transaction.atomic():
        ContractRecord({"token": token}).start(backend=harness.backend)
        transaction.set_rollback(True)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == (0 if harness.transactional else 1)


def test_on_commit_false_hands_over_inside_a_rolled_back_transaction(
    harness: BackendHarness, token: str
) -> None:
    with transaction.atomic():
        ContractRecord({"token": token}).start(on_commit=False, backend=harness.backend)
        transaction.set_rollback(True)
    harness.drain(TIMEOUT)
    # Backends that write the run in the caller's transaction lose it with the rollback, on
    # purpose: on_commit only decides when other backends are handed the run.
    in_transaction = harness.backend.enqueues_in_transaction and harness.transactional
    assert harness.ran(token) == (0 if in_transaction else 1)


def test_an_unknown_task_name_fails_and_the_backend_keeps_working(
    harness: BackendHarness, token: str
) -> None:
    request = EnqueueRequest(
        run_id=new_run_id(),
        task_name="contract.no_such_task",
        params_json="{}",
        queue="default",
        priority=0,
        run_after=None,
        key=None,
        max_attempts=3,
        timeout=None,
    )
    handle = harness.backend.enqueue(request)
    assert handle.id == request.run_id
    harness.drain(TIMEOUT)
    ContractRecord({"token": token}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == 1
    if flag(harness, "supports_results"):
        assert handle.refresh().status is TaskStatus.FAILED


def test_a_failing_task_does_not_stop_the_backend(harness: BackendHarness, token: str) -> None:
    ContractFlaky({"token": f"{token}-bad", "failures": 99}).start(backend=harness.backend)
    ContractRecord({"token": token}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert harness.ran(token) == 1


def test_results_are_readable_or_refused(harness: BackendHarness, token: str) -> None:
    ok = ContractRecord({"token": token, "value": "v"}).start(backend=harness.backend)
    bad = ContractFlaky({"token": f"{token}-bad", "failures": 99}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    if not flag(harness, "supports_results"):
        with pytest.raises(ResultNotAvailableError):
            ok.refresh()
        return
    assert ok.refresh().status is TaskStatus.SUCCEEDED
    assert ok.result == "v"
    assert bad.refresh().status is TaskStatus.FAILED
    assert bad.error is not None
    assert "failure" in bad.error.message


def test_typed_results_come_back_as_their_type_from_wait_or_are_refused(
    harness: BackendHarness, token: str
) -> None:
    ok = ContractTyped({"token": token}).start(backend=harness.backend)
    bad = ContractFlaky({"token": f"{token}-bad", "failures": 99}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    expected = Quote(token=token, amount=Decimal("9.90"), at=datetime(2030, 1, 2))
    if not flag(harness, "supports_results") and not ok.status.is_finished:
        with pytest.raises(ResultNotAvailableError):
            ok.wait(timeout=TIMEOUT)
        return
    result = ok.wait(timeout=TIMEOUT)
    assert type(result) is Quote
    assert result == expected
    if not flag(harness, "supports_results") and not bad.status.is_finished:
        return
    with pytest.raises(RunFailedError) as caught:
        bad.wait(timeout=TIMEOUT)
    assert caught.value.status is TaskStatus.FAILED
    assert "failure" in caught.value.error.message
