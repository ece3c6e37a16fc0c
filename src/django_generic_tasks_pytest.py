"""The pytest plugin of django-generic-tasks (a ``pytest11`` entry point): ``captured_tasks``.

A top-level module, so that loading it imports nothing from Django or ``django_generic_tasks``
until a test uses the fixture: pytest starts whether or not Django is configured, and coverage
measures the package from its first line (pytest imports plugins before coverage starts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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
