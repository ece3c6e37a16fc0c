"""Support shared by the core's unit tests: a registry that forgets tasks defined by a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_generic_tasks.core.registry import registry


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Forget every task class a test defines, so tests do not leak names into each other.

    While the test runs, the registry behaves as before any HTTP router was built, so tasks
    defined inside tests do not warn about having no endpoint.
    """
    before, urls_built = dict(registry._tasks), registry.urls_built
    registry.urls_built = False
    yield
    with registry._lock:
        registry._tasks.clear()
        registry._tasks.update(before)
    registry.urls_built = urls_built
