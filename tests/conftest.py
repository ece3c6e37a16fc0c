"""Shared fixtures: a clean test task log, and services that skip (or fail under CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.testapp import tasks as testapp_tasks

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need_service(reason: str) -> None:
    """Skip the test because a real service is missing; under CI=true, fail instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: services must be running)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _reset_testapp() -> Iterator[None]:
    from django_generic_tasks import conf

    testapp_tasks.reset()
    conf.reset()
    yield
    conf.reset()
