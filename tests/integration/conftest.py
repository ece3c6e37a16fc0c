"""Fixtures shared by the integration tests that start real worker or scheduler processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.worker_procs import ProcDB


@pytest.fixture
def procdb(tmp_path: Path) -> Iterator[ProcDB]:
    """A test database that ``manage.py`` processes can open, closed after the test."""
    db = ProcDB(tmp_path)
    try:
        yield db
    finally:
        db.close()
