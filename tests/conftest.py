"""Shared fixtures: a clean test task log, and services that skip (or fail under CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.test import TransactionTestCase

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


DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
    }
)
"""pytest-django's fixtures that open the test database (a test without one cannot touch it)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--database-facing``: the passes on the extra databases run only what can differ there."""
    parser.addoption(
        "--database-facing",
        action="store_true",
        help="run only the tests that touch the database (pytest-django blocks the others' "
        "access, so their outcome cannot depend on which database is configured)",
    )


def touches_database(item: pytest.Item) -> bool:
    """Whether ``item`` may use the test database: marked ``django_db`` or using a db fixture."""
    if item.get_closest_marker("django_db") or item.get_closest_marker("per_database"):
        return True
    cls = getattr(item, "cls", None)
    if cls is not None and issubclass(cls, TransactionTestCase):  # Django's own test cases
        return True
    return bool(DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of ``CONCURRENCY_MODULES`` ``concurrency``; with ``--database-facing``,
    deselect the tests that cannot touch the database."""
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in CONCURRENCY_MODULES:
            item.add_marker(pytest.mark.concurrency)
    if config.getoption("--database-facing"):
        kept, deselected = [], []
        for item in items:
            (kept if touches_database(item) else deselected).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = kept


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
