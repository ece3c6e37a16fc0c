"""A store write that meets a lock conflict that will pass is tried again, a bounded number of
times, and never inside the caller's transaction (issue 19: the SQLite "table is locked" flake).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, connection, transaction

from django_generic_tasks.store import transient
from django_generic_tasks.store.transient import ATTEMPTS, is_transient, retry_transient


def _wrapped(cause: BaseException) -> OperationalError:
    """The error as Django raises it: its own class, the driver's error as the cause."""
    error = OperationalError(*cause.args)
    error.__cause__ = cause
    return error


class FlakyStore:
    """Stands in for a run store: its write fails ``failures`` times with ``error``."""

    def __init__(self, error: BaseException, failures: int) -> None:
        self.connection = connection
        self.error = error
        self.failures = failures
        self.calls = 0

    @retry_transient
    def write(self, value: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return value * 2


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(transient.time, "sleep", pauses.append)
    return pauses


@pytest.mark.parametrize(
    "cause",
    [
        sqlite3.OperationalError("database table is locked"),
        sqlite3.OperationalError("database is locked"),
    ],
    ids=["sqlite-shared-cache", "sqlite-busy"],
)
def test_a_sqlite_lock_conflict_is_transient(cause: BaseException) -> None:
    assert is_transient(_wrapped(cause))


def test_other_database_errors_are_not_transient() -> None:
    assert not is_transient(_wrapped(sqlite3.OperationalError("no such table: taskrun")))
    assert not is_transient(ValueError("database is locked"))  # not a database error at all
    assert not is_transient(OperationalError(2006, "MySQL server has gone away"))


def test_mysql_deadlock_and_lock_wait_codes_are_transient() -> None:
    assert is_transient(OperationalError(1213, "Deadlock found when trying to get lock"))
    assert is_transient(OperationalError(1205, "Lock wait timeout exceeded"))


def test_a_write_that_meets_a_lock_twice_succeeds_on_the_third_try(
    _no_sleep: list[float],  # noqa: PT019 - the pauses it recorded
) -> None:
    store = FlakyStore(_wrapped(sqlite3.OperationalError("database table is locked")), 2)
    assert store.write(21) == 42
    assert store.calls == 3
    assert len(_no_sleep) == 2
    assert _no_sleep[1] > _no_sleep[0] * 1.0 or _no_sleep[1] >= transient.FIRST_PAUSE  # grows


def test_a_lock_that_never_passes_is_raised_after_the_bounded_number_of_tries(
    _no_sleep: list[float],  # noqa: PT019 - the pauses it recorded
) -> None:
    store = FlakyStore(_wrapped(sqlite3.OperationalError("database is locked")), 100)
    with pytest.raises(OperationalError, match="database is locked"):
        store.write(1)
    assert store.calls == ATTEMPTS
    assert len(_no_sleep) == ATTEMPTS - 1
    assert sum(_no_sleep) < 1.5  # a worker gives up within about a second


def test_any_other_error_is_raised_at_once() -> None:
    store = FlakyStore(_wrapped(sqlite3.OperationalError("no such column: attempt")), 1)
    with pytest.raises(OperationalError, match="no such column"):
        store.write(1)
    assert store.calls == 1


@pytest.mark.django_db
def test_inside_the_callers_transaction_a_conflict_is_not_retried() -> None:
    store = FlakyStore(_wrapped(sqlite3.OperationalError("database is locked")), 1)
    with transaction.atomic(), pytest.raises(OperationalError):
        store.write(1)
    assert store.calls == 1  # only the caller can run its whole transaction again


def _one_run() -> object:
    """The primary key of a freshly started run on ``DatabaseBackend``."""
    from django_generic_tasks.backends import DatabaseBackend
    from django_generic_tasks.models import TaskRun
    from tests.testapp.tasks import AddParams, AddTask

    handle = AddTask(AddParams(a=1, b=2)).start(backend=DatabaseBackend(), on_commit=False)
    return TaskRun.objects.get(id=handle.id).pk


def _conflict_on_a_locked_row(begin: str, session: str | None, conflicting: str) -> BaseException:
    """The error the real server raises when ``conflicting`` meets a run's row that another
    connection holds ``FOR UPDATE`` (``session``: a setting of ours first)."""
    from django.db import connections

    pk = _one_run()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(begin)
            cursor.execute(
                "SELECT id FROM django_generic_tasks_taskrun WHERE id = %s FOR UPDATE", [pk]
            )
            with connection.cursor() as mine:
                if session is not None:
                    mine.execute(session)
                with pytest.raises(OperationalError) as caught:
                    mine.execute(conflicting, [pk])
            cursor.execute("ROLLBACK")
    finally:
        other.close()
    return caught.value


@pytest.mark.django_db(transaction=True)
def test_a_postgresql_lock_conflict_is_recognised_from_the_real_server() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's SQLSTATE codes (DATABASE_URL=postgres://...)")
    error = _conflict_on_a_locked_row(
        "BEGIN",
        None,
        "SELECT id FROM django_generic_tasks_taskrun WHERE id = %s FOR UPDATE NOWAIT",
    )
    assert is_transient(error)


@pytest.mark.django_db(transaction=True)
def test_a_mariadb_lock_wait_timeout_is_recognised_from_the_real_server() -> None:
    if connection.vendor != "mysql":
        pytest.skip("MariaDB's error codes (DATABASE_URL=mysql://...)")
    error = _conflict_on_a_locked_row(
        "START TRANSACTION",
        "SET SESSION innodb_lock_wait_timeout = 1",
        "UPDATE django_generic_tasks_taskrun SET priority = 1 WHERE id = %s",
    )
    assert is_transient(error)


@pytest.mark.django_db(transaction=True)
def test_a_worker_postpones_while_another_process_briefly_holds_the_sqlite_write_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flake's own path: ``postpone()`` meets another writer and, with the busy timeout
    spent at once, is tried again after the writer commits; nothing is lost."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's single writer")
    from django_generic_tasks.backends import DatabaseBackend
    from django_generic_tasks.models import TaskRun
    from django_generic_tasks.store import for_connection
    from tests.testapp.tasks import AddParams, AddTask

    handle = AddTask(AddParams(a=1, b=2)).start(backend=DatabaseBackend(), on_commit=False)
    store = for_connection(connection)
    (run,) = store.queue.claim("w", [], 1, 30.0, datetime.now(UTC))
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"timeout": 0.01})
    holder = sqlite3.connect(connection.settings_dict["NAME"], check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.05, holder.commit)
    tries: list[float] = []

    def pause(seconds: float) -> None:
        tries.append(seconds)
        released.join()

    monkeypatch.setattr(transient.time, "sleep", pause)
    released.start()
    try:
        assert store.queue.postpone("w", run, datetime.now(UTC) + timedelta(seconds=1)) == 1
    finally:
        holder.close()
        connection.close()
    assert tries  # it met the lock, and waited for it
    row = TaskRun.objects.get(id=handle.id)
    assert (row.status, row.attempt, row.worker_id) == ("scheduled", 0, None)
