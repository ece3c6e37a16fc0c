"""Real worker processes against a private database (SQLite file, PostgreSQL or MariaDB).

The database follows ``DATABASE_URL`` like the rest of the suite, but each test gets its own
(a temporary SQLite file, or a fresh PostgreSQL/MariaDB database dropped afterwards), so
worker processes and the test share it without touching pytest-django's test database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "tests" / "manage.py"
TABLE = "django_generic_tasks_taskrun"


class ProcDB:
    """A private database plus helpers to run ``manage.py`` commands against it."""

    def __init__(self, tmp: Path, *, migrate: bool = True) -> None:
        self.tmp = tmp
        self.log = tmp / "side-effects.log"
        self.log.touch()
        url = os.environ.get("DATABASE_URL", "")
        self.vendor = (
            "postgresql"
            if url.startswith("postgres")
            else "mysql"
            if url.startswith("mysql")
            else "sqlite"
        )
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env.update(
            {
                "CHAOS_LOG": str(self.log),
                "TASKS_TEST_IMPORT": "tests.integration.chaos_tasks",
                # The checkout's source first, as in the test process (not an installed copy).
                "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.vendor == "postgresql":
            import psycopg

            parsed = urlparse(url)
            self.name = f"dgt_proc_{uuid.uuid4().hex[:10]}"
            self.admin_dsn = (
                f"host={parsed.hostname or '127.0.0.1'} port={parsed.port or 5432} "
                f"user={parsed.username or 'postgres'} dbname=postgres"
            )
            self.dsn = self.admin_dsn.replace("dbname=postgres", f"dbname={self.name}")
            try:
                self._admin(f'CREATE DATABASE "{self.name}"')
            except psycopg.OperationalError as exc:
                from tests.conftest import need_service

                need_service(f"PostgreSQL is not reachable: {exc}")
            netloc = parsed.netloc
            self.env["DATABASE_URL"] = f"postgres://{netloc}/{self.name}"
        elif self.vendor == "mysql":
            parsed = urlparse(url)
            self.name = f"dgt_proc_{uuid.uuid4().hex[:10]}"
            self.mysql = {
                "host": parsed.hostname or "127.0.0.1",
                "port": parsed.port or 3306,
                "user": parsed.username or "root",
                "password": parsed.password or "",
            }
            try:
                self._admin(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4")
            except Exception as exc:
                from tests.conftest import need_service

                need_service(f"MariaDB/MySQL is not reachable: {exc}")
            self.env["DATABASE_URL"] = f"mysql://{parsed.netloc}/{self.name}"
        else:
            self.name = str(tmp / "tasks.sqlite3")
            self.env["TASKS_TEST_SQLITE"] = self.name
            self.env["TASKS_TEST_SQLITE_DEPLOYED"] = "1"
        self.workers: list[subprocess.Popen[bytes]] = []
        if migrate:
            self.manage("migrate", "-v0")

    def _mysql(self, database: str | None = None) -> Any:
        import MySQLdb

        return MySQLdb.connect(**self.mysql, database=database or "", autocommit=True)

    def _admin(self, statement: str) -> None:
        if self.vendor == "mysql":
            conn = self._mysql()
            try:
                conn.cursor().execute(statement)
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop leftover workers and drop the database."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.vendor == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self.vendor == "mysql":
            self._admin(f"DROP DATABASE IF EXISTS {self.name}")

    def manage(self, *args: str) -> str:
        """Run a ``manage.py`` command; return its stdout (raise with output on failure)."""
        result = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start_runs(self, count: int, sleep: float = 0.0, **options: Any) -> None:
        """Bulk-start ``count`` chaos runs numbered 0..count-1."""
        code = (
            "from django_generic_tasks.backends import DatabaseBackend\n"
            "from tests.integration.chaos_tasks import ChaosTask\n"
            f"ChaosTask.start_many([{{'n': i, 'sleep': {sleep!r}}} for i in range({count})],"
            f" backend=DatabaseBackend(), **{options!r})\n"
        )
        self.manage("shell", "-v0", "-c", code)

    def enqueue_django(self, function: str, calls: list[dict[str, Any]]) -> list[str]:
        """Enqueue the Django ``@task`` ``tests.integration.chaos_djtasks.<function>`` once per
        keyword-argument dict of ``calls``, in one transaction; return the result ids."""
        code = (
            "import json\n"
            "from django.db import transaction\n"
            f"from tests.integration.chaos_djtasks import {function} as f\n"
            "with transaction.atomic():\n"
            f"    ids = [f.enqueue(**kw).id for kw in {calls!r}]\n"
            "print(json.dumps(ids))\n"
        )
        return list(json.loads(self.manage("shell", "-v0", "-c", code)))

    def django_results(self, ids: list[str]) -> list[dict[str, Any]]:
        """The ``TaskResult`` of each id, as read by ``get_result()`` in another process."""
        code = (
            "import json\n"
            "from django.tasks import task_backends\n"
            "out = []\n"
            f"for i in {ids!r}:\n"
            "    r = task_backends['dgt'].get_result(i)\n"
            "    out.append({'status': str(r.status), 'attempts': r.attempts,\n"
            "        'value': r.return_value if r.status == 'SUCCESSFUL' else None,\n"
            "        'errors': [e.exception_class_path for e in r.errors],\n"
            "        'finished': r.finished_at is not None})\n"
            "print(json.dumps(out))\n"
        )
        return list(json.loads(self.manage("shell", "-v0", "-c", code)))

    def start_worker(self, *args: str, stderr: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
        """Start ``manage.py tasks_worker`` with ``args``."""
        log = stderr or (self.tmp / f"worker-{len(self.workers)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, str(MANAGE), "tasks_worker", *args],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.workers.append(proc)
        return proc

    def worker_log(self, proc: subprocess.Popen[bytes]) -> str:
        """What the worker wrote so far."""
        return Path(proc.log_path).read_text()  # type: ignore[attr-defined]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (with ``%s`` placeholders) from the private database."""
        if self.vendor == "postgresql":
            import psycopg

            with psycopg.connect(self.dsn, autocommit=True) as conn:
                return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
        if self.vendor == "mysql":
            conn = self._mysql(self.name)
            try:
                cursor = conn.cursor()
                cursor.execute(sql, params or None)
                return list(cursor.fetchall())
            finally:
                conn.close()
        import sqlite3

        conn = sqlite3.connect(self.name, timeout=30)
        try:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            conn.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Run a statement that returns no rows."""
        if self.vendor == "postgresql":
            import psycopg

            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(sql, params)  # type: ignore[arg-type]
            return
        if self.vendor == "mysql":
            self.query(sql, params)
            return
        import sqlite3

        conn = sqlite3.connect(self.name, timeout=30, isolation_level=None)
        try:
            conn.execute(sql.replace("%s", "?"), params)
        finally:
            conn.close()

    def statuses(self) -> Counter[str]:
        """How many runs are in each status."""
        return Counter(dict(self.query(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status")))

    def side_effects(self) -> Counter[int]:
        """How many times each run number completed its body."""
        # Whole lines only: one a worker is appending right now may be read in part.
        return Counter(int(line) for line in self.log.read_text().split("\n")[:-1] if line)

    def terminate_connections(self) -> int:
        """Kill every server connection to the database, like a restart would."""
        if self.vendor == "mysql":
            ids = self.query(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = %s AND id <> CONNECTION_ID()",
                (self.name,),
            )
            for (thread_id,) in ids:
                self.execute(f"KILL {int(thread_id)}")
            return len(ids)
        rows = self.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.name,),
        )
        return len(rows)


def wait_for(condition: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll ``condition`` until it holds; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s: {message}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM the worker and wait for it to exit; return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)
