"""The pytest plugin of django-generic-tasks (a ``pytest11`` entry point): ``captured_tasks``,
and closing the connections ``handle.wait()`` listens on before pytest-django drops the test
database.

A top-level module, so that loading it imports nothing from Django or ``django_generic_tasks``
until a test uses the fixture: pytest starts whether or not Django is configured, and coverage
measures the package from its first line (pytest imports plugins before coverage starts).
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django_generic_tasks.testing import TaskCapture


@pytest.fixture
def captured_tasks() -> Iterator[TaskCapture]:
    """A ``TaskCapture`` active for the whole test: every ``start()`` is captured, not run.

    A start inside ``atomic()`` is dropped if that block rolls back; inside the test's own
    transaction (``django_db`` without ``transaction=True``), which never commits, it stays.
    """
    from django_generic_tasks.testing import capture_tasks

    with capture_tasks() as capture:
        yield capture


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
    """Once pytest-django has created the test databases, register (after its own teardown,
    so it runs first) the closing of ``wait()``'s listen connections: PostgreSQL refuses to
    drop a database that a connection still uses."""
    result = yield
    if fixturedef.argname == "django_db_setup":
        fixturedef.addfinalizer(_stop_wait_listeners)
    return result


def _stop_wait_listeners() -> None:
    if "django_generic_tasks.store.finish_notices" in sys.modules:  # only if some test waited
        from django_generic_tasks.testing import stop_wait_listeners

        stop_wait_listeners()
