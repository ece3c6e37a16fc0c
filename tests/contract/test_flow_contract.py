"""The flow control contract: every backend honours concurrency limits, rate limits and
``RetryAfter``, or refuses the option at ``start()`` with ``UnsupportedOptionError`` (its
``concurrency_limits`` / ``rate_limits`` declaration says which); never ignores it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from django_generic_tasks import TaskStatus, UnsupportedOptionError
from tests.contract.flow_tasks import ContractLimited, ContractRated, ContractSnooze, most_at_once
from tests.contract.harnesses import BackendHarness, HarnessFactory, harness_params
from tests.contract.tasks import entries

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


def test_a_concurrency_limit_is_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    params = [{"token": token, "seconds": 0.1} for _ in range(4)]
    if not harness.backend.concurrency_limits:
        with pytest.raises(UnsupportedOptionError, match="concurrency_limit"):
            ContractLimited(params[0]).start(backend=harness.backend)
        harness.drain(TIMEOUT)
        assert entries(token) == []
        return
    ContractLimited.start_many(params, backend=harness.backend)
    harness.drain(TIMEOUT)
    assert len(entries(token, "end")) == 4
    assert most_at_once(token) == 1


def test_runs_of_other_concurrency_keys_do_not_wait(harness: BackendHarness, token: str) -> None:
    if not harness.backend.concurrency_limits:
        pytest.skip("refused (test_a_concurrency_limit_is_honoured_or_refused)")
    keys = ["a", "b", "a", "b"]
    ContractLimited.start_many(
        [{"token": f"{token}-{key}", "key": f"{token}-{key}", "seconds": 0.1} for key in keys],
        backend=harness.backend,
    )
    harness.drain(TIMEOUT)
    for key in ("a", "b"):
        assert len(entries(f"{token}-{key}", "end")) == 2
        assert most_at_once(f"{token}-{key}") == 1


def test_a_rate_limit_is_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    params = [{"token": token} for _ in range(5)]
    if not harness.backend.rate_limits:
        with pytest.raises(UnsupportedOptionError, match="rate_limit"):
            ContractRated(params[0]).start(backend=harness.backend)
        harness.drain(TIMEOUT)
        assert entries(token) == []
        return
    ContractRated.start_many(params, backend=harness.backend)
    harness.drain(TIMEOUT)
    starts = sorted(entry["at"] for entry in entries(token, "start"))
    assert len(starts) == 5
    # 10/s: evenly spaced starts, 0.1 s apart (the first at once)
    assert starts[-1] - starts[0] >= 0.4 * 0.95


def test_retry_after_runs_the_next_attempt_then_without_using_an_attempt(
    harness: BackendHarness, token: str
) -> None:
    began = time.time()
    handle = ContractSnooze({"token": token, "seconds": 0.3}).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    attempts = entries(token, "attempt")
    assert [entry["attempt"] for entry in attempts] == [1, 2]
    assert attempts[1]["at"] >= attempts[0]["at"] + 0.3 - 0.01
    assert attempts[1]["at"] >= began + 0.3 - 0.01
    assert len(entries(token, "ran")) == 1  # max_attempts is 1: the snooze did not count
    if harness.backend.supports_results:
        assert handle.refresh().status is TaskStatus.SUCCEEDED


def test_retry_after_that_counts_uses_up_the_attempts(harness: BackendHarness, token: str) -> None:
    handle = ContractSnooze({"token": token, "seconds": 0.05, "counts": True}).start(
        backend=harness.backend
    )
    harness.drain(TIMEOUT)
    assert [entry["attempt"] for entry in entries(token, "attempt")] == [1]
    assert entries(token, "ran") == []
    if harness.backend.supports_results:
        assert handle.refresh().status is TaskStatus.FAILED
