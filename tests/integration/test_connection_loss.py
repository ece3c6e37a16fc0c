"""A lost database connection mid-run is not the task's fault (issue 22, item 7): a real
``tasks_worker`` reaches PostgreSQL through a TCP proxy the test cuts while a run sits in a
query; the worker puts the same attempt back once the database is there again, and the run
(one attempt allowed) then succeeds instead of failing for good."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.integration.worker_procs import TABLE, ProcDB, stop, wait_for
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


def test_a_run_whose_connection_drops_is_put_back_as_the_same_attempt(procdb: ProcDB) -> None:
    if procdb.vendor != "postgresql":
        pytest.skip("the proxied outage is PostgreSQL's (the task sleeps in pg_sleep)")
    url = urlparse(procdb.env["DATABASE_URL"])
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    try:
        procdb.manage(
            "shell",
            "-v0",
            "-c",
            "from django_generic_tasks.backends import DatabaseBackend\n"
            "from tests.integration.chaos_tasks import HoldsItsConnection\n"
            "HoldsItsConnection({'n': 7}).start(backend=DatabaseBackend())\n",
        )
        proxied = f"postgres://{url.username or 'postgres'}@127.0.0.1:{proxy.port}{url.path}"
        procdb.env["DATABASE_URL"] = proxied
        worker = procdb.start_worker("--concurrency", "1", "--interval", "0.1")
        wait_for(
            lambda: (
                procdb.query(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND query LIKE 'SELECT pg_sleep%%'",
                    (procdb.name,),
                )[0][0]
                == 1
            ),
            60,
            "the run to sit in its query",
        )
        Path(str(procdb.log) + ".resume").touch()  # its next start returns at once
        proxy.cut()
        wait_for(
            lambda: "as the same attempt" in procdb.worker_log(worker),
            60,
            "the worker to put the run back",
        )
        assert procdb.statuses() == {"running": 1}  # nothing written while the database is away
        proxy.resume()
        wait_for(lambda: procdb.statuses() == {"succeeded": 1}, 60, "the run to succeed")
        assert stop(worker) == 0
    finally:
        proxy.close()
    assert procdb.query(f"SELECT attempt, max_attempts FROM {TABLE}") == [(1, 1)]
    assert procdb.side_effects() == {7: 1}
    assert "database connection was lost" in procdb.worker_log(worker)
