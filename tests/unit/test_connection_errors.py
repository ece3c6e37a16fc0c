"""Which database errors put an attempt back (issue 22, item 7): a lost connection does, a
statement's own failure (a timeout, a bad query) does not. Real PostgreSQL errors."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, connections

from django_generic_tasks.support.dberrors import is_connection_lost

pytestmark = pytest.mark.django_db(transaction=True)


def error_of(sql: str) -> DatabaseError:
    with pytest.raises(DatabaseError) as caught, connection.cursor() as cursor:
        cursor.execute(sql)
    return caught.value


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the errors below are PostgreSQL's")


@pytest.mark.usefixtures("postgresql")
def test_a_connection_the_server_terminated_is_lost() -> None:
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(DatabaseError) as caught, other.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        other.close()
    assert is_connection_lost(caught.value)


@pytest.mark.usefixtures("postgresql")
def test_a_statement_timeout_or_a_bad_query_is_the_tasks_own_failure() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 1")
    try:
        assert not is_connection_lost(error_of("SELECT pg_sleep(1)"))
    finally:
        connection.close()
    assert not is_connection_lost(error_of("SELECT * FROM no_such_table"))


def test_errors_that_are_not_from_the_database_are_not_lost_connections() -> None:
    assert not is_connection_lost(ValueError("no"))
    assert not is_connection_lost(DatabaseError("no cause"))
