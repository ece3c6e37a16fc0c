"""Shared fixtures: a clean test task log, and services that skip (or fail under CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.testapp import tasks as testapp_tasks

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

CONCURRENCY_MODULES = frozenset(
    f"tests.unit.{name}"
    for name in (
        "test_abandoned_threads",
        "test_async_worker",
        "test_await_result_concurrency",
        "test_cancel",
        "test_database_task_backend",
        "test_database_worker",
        "test_execution",
        "test_get_handle",
        "test_heartbeat_pins",
        "test_pending_cancel",
        "test_progress",
        "test_security_certs",
        "test_store_transient",
        "test_threading",
        "test_threading_bounds",
        "test_typed_results",
        "test_wait_postgresql",
    )
)
"""The tests where threads, worker loops, leases, timeouts and LISTEN/NOTIFY meet: marked
``concurrency``, the set ``scripts/flakes.py`` reruns by default (and CI, several times)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of ``CONCURRENCY_MODULES`` ``concurrency``."""
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in CONCURRENCY_MODULES:
            item.add_marker(pytest.mark.concurrency)


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
