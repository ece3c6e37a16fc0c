"""Beside the contract suite, on every harness: an ``eta`` given in a zone other than UTC is one
instant, and every backend runs the task at that instant (not hours early or late, as a backend
that read the wall-clock digits as UTC would)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from django_generic_tasks import UnsupportedOptionError
from django_generic_tasks.signals import task_enqueued
from tests.contract.harnesses import BackendHarness
from tests.contract.tasks import ContractRecord
from tests.contract.test_contract import TIMEOUT, harness, token  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/Los_Angeles"])
def test_an_eta_in_another_zone_runs_at_the_same_instant(
    harness: BackendHarness,  # noqa: F811
    token: str,  # noqa: F811
    zone: str,
) -> None:
    eta = datetime.now(ZoneInfo(zone)) + timedelta(milliseconds=300)
    task = ContractRecord({"token": token})
    if not harness.backend.supports_defer:
        with pytest.raises(UnsupportedOptionError):
            task.start(eta=eta, backend=harness.backend)
        return
    handed: list[Any] = []

    def on_enqueued(request: Any, **kwargs: Any) -> None:
        handed.append(request.run_after)

    task_enqueued.connect(on_enqueued, weak=False)
    try:
        task.start(eta=eta, backend=harness.backend)
    finally:
        task_enqueued.disconnect(on_enqueued)
    assert handed == [eta]  # the same instant (aware datetimes compare as instants)
    harness.drain(TIMEOUT)
    (entry,) = harness.calls(token)
    assert eta.timestamp() - 0.001 <= entry["at"] < eta.timestamp() + TIMEOUT
