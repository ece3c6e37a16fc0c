"""``handle.wait()`` in one process for runs a real ``tasks_worker`` process runs (SQLite,
PostgreSQL or MariaDB, per ``DATABASE_URL``): the typed result, or the failure."""

from __future__ import annotations

import pytest

from tests.integration.worker_procs import ProcDB, stop

pytestmark = pytest.mark.slow

WAIT = """
import time
import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend
from tests.integration.chaos_tasks import Square, SquareTask
backend = DatabaseBackend()
handles = [SquareTask({"n": n}).start(backend=backend) for n in range(5)]
failing = SquareTask({"n": 7, "fail": True}).start(backend=backend)
results = [h.wait(timeout=60) for h in handles]
assert all(type(r) is Square for r in results), results
print("squares", [r.square for r in results])
try:
    failing.wait(timeout=60)
except tasks.RunFailedError as exc:
    print("failed", exc.status, exc.error.type, exc.error.message)
"""


def test_wait_returns_typed_results_and_raises_failures_from_a_worker_process(
    procdb: ProcDB,
) -> None:
    worker = procdb.start_worker("--interval", "0.2")
    try:
        output = procdb.manage("shell", "-v0", "-c", WAIT)
    finally:
        assert stop(worker) == 0
    assert "squares [0, 1, 4, 9, 16]" in output
    assert "failed failed builtins.ValueError no square for 7" in output
