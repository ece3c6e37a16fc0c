"""A worker started before ``migrate`` (issue 22, item 2): it says "run migrate" once, waits
quietly, and starts by itself once the tables are there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.worker_procs import ProcDB, stop, wait_for

pytestmark = pytest.mark.slow

HINT = "Run `python manage.py migrate`"


@pytest.fixture
def unmigrated(tmp_path: Path) -> Iterator[ProcDB]:
    db = ProcDB(tmp_path, migrate=False)
    try:
        yield db
    finally:
        db.close()


def test_worker_before_migrate_says_so_once_then_starts_when_the_tables_exist(
    unmigrated: ProcDB,
) -> None:
    worker = unmigrated.start_worker("--interval", "0.1", "--concurrency", "2")
    wait_for(lambda: HINT in unmigrated.worker_log(worker), 60, "the worker to ask for migrate")
    time.sleep(2.5)  # several looks at the migrations: still one message
    log = unmigrated.worker_log(worker)
    assert log.count(HINT) == 1, log
    assert "Database unavailable" not in log
    assert worker.poll() is None
    unmigrated.manage("migrate", "-v0")
    unmigrated.start_runs(3)
    wait_for(lambda: unmigrated.statuses().get("succeeded", 0) == 3, 60, "the runs to succeed")
    assert stop(worker) == 0
    log = unmigrated.worker_log(worker)
    assert "Migrations applied on database 'default': starting" in log
    assert log.count(HINT) == 1
    assert "heartbeat failed" not in log
