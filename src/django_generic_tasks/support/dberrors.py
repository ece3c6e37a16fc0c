"""Which database errors mean the connection itself was lost (not the statement's fault).

A task whose database connection drops mid-attempt did nothing wrong: the database worker
puts the same attempt back instead of failing it (``execution.requeue_lost_connections``).
"""

from __future__ import annotations

__all__ = ["is_connection_lost"]

# SQLSTATE class 08 (connection exception) and the server going away (57P01-57P03).
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# MySQL/MariaDB client errors: can't connect (2002, 2003), gone away (2006), lost (2013),
# and the server killing the connection (1927 MariaDB, 4031 MySQL).
_LOST_MYSQL_CODES = frozenset({2002, 2003, 2006, 2013, 2055, 1927, 4031})


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is Django's ``OperationalError``/``InterfaceError`` for a connection
    that dropped or could not be made; a deadlock, a lock timeout or a bad statement is not."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True  # "connection already closed"
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if cause is None:
        return False
    module = type(cause).__module__
    if module.startswith(("psycopg", "psycopg2")):
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        # No SQLSTATE at all: the client library failed, not the server (the socket closed).
        return state is None or str(state).startswith(_LOST_SQLSTATES)
    if module.startswith("MySQLdb"):
        code = cause.args[0] if cause.args else None
        return code in _LOST_MYSQL_CODES
    return False
