"""The workflow contract: ``tasks.chain()`` and ``tasks.group().then()`` are honoured on every
backend that declares ``supports_workflows`` and refused (``UnsupportedOptionError``, nothing
run) on the others; never ignored."""

from __future__ import annotations

import pytest

import django_generic_tasks as tasks
from django_generic_tasks import UnsupportedOptionError
from tests.contract.harnesses import BackendHarness
from tests.contract.tasks import (
    ContractGather,
    ContractStep,
    ContractSteps,
    StepParams,
    StepsParams,
    entries,
)
from tests.contract.test_contract import TIMEOUT, flag, harness, token

__all__ = ["harness", "token"]  # the fixtures this module shares with the contract suite

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_chain_is_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    chain = tasks.chain(ContractStep(StepParams(token=token, n=0)), ContractStep, ContractStep)
    if not flag(harness, "supports_workflows"):
        with pytest.raises(UnsupportedOptionError):
            chain.start(backend=harness.backend)
        harness.drain(TIMEOUT)
        assert entries(token) == []
        return
    handle = chain.start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert [entry["n"] for entry in entries(token, "step")] == [0, 1, 2]
    assert handle.wait(timeout=TIMEOUT) == StepParams(token=token, n=3)


def test_a_failed_step_stops_the_chain(harness: BackendHarness, token: str) -> None:
    if not flag(harness, "supports_workflows"):
        return  # refused: the test above
    handle = tasks.chain(ContractStep(StepParams(token=token, n=-2)), ContractStep, ContractStep)
    started = handle.start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert [entry["n"] for entry in entries(token, "step")] == [-2, -1]
    with pytest.raises(tasks.WorkflowFailedError):
        started.wait(timeout=TIMEOUT)
    assert started.failed_step == 1


def test_a_group_callback_is_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    members = [ContractStep(StepParams(token=token, n=n)) for n in (3, 1, 2)]
    workflow = tasks.group(members).then(ContractGather)
    if not flag(harness, "supports_workflows"):
        with pytest.raises(UnsupportedOptionError):
            workflow.start(backend=harness.backend)
        harness.drain(TIMEOUT)
        assert entries(token) == []
        return
    handle = workflow.start(backend=harness.backend)
    harness.drain(TIMEOUT)
    assert sorted(entry["n"] for entry in entries(token, "step")) == [1, 2, 3]
    assert [entry["ns"] for entry in entries(token, "gather")] == [[4, 2, 3]]
    assert handle.wait(timeout=TIMEOUT) == [4, 2, 3]


def test_a_batch_is_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    backend = harness.backend
    done = ContractStep(StepParams(token=f"{token}-done", n=100))
    if not flag(harness, "supports_workflows"):
        with pytest.raises(UnsupportedOptionError), tasks.batch(on_finish=done, backend=backend):
            ContractStep(StepParams(token=token, n=0)).start(backend=backend)
        harness.drain(TIMEOUT)
        assert entries(token) == entries(f"{token}-done") == []
        return
    with tasks.batch(on_finish=done, backend=backend) as batch:
        for n in range(3):
            ContractStep(StepParams(token=token, n=n)).start(backend=backend)
    harness.drain(TIMEOUT)
    assert sorted(entry["n"] for entry in entries(token, "step")) == [0, 1, 2]
    assert [entry["n"] for entry in entries(f"{token}-done", "step")] == [100]
    assert batch.wait(timeout=TIMEOUT) == {"succeeded": 3}


def test_resumable_steps_are_honoured_or_refused(harness: BackendHarness, token: str) -> None:
    ContractSteps(StepsParams(token=token)).start(backend=harness.backend)
    harness.drain(TIMEOUT)
    if not flag(harness, "supports_continuations"):  # the run fails before its first step
        assert entries(token) == []
        return
    assert len(entries(token, "once")) == 1  # not again on the retry
    assert [entry["n"] for entry in entries(token, "item")] == [0, 1, 2, 3]  # each once
