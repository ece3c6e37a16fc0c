"""Retrying the store's own writes when they meet a lock that will pass.

A worker's write (claim, finish, give back, heartbeat) can meet another writer: SQLite answers
"database is locked" once its busy timeout is spent (or "database table is locked" in
shared-cache mode, which never waits), MariaDB a lock-wait timeout or a deadlock, PostgreSQL a
deadlock or a serialization failure. Each leaves the database as it was, so the same statements
are tried again a few times, with a short growing pause, before the error reaches the caller.
Inside an outer ``atomic()`` block the statements are not retried: the caller's transaction was
rolled back as a whole and only the caller can start it again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, Protocol

logger = logging.getLogger("django_generic_tasks")

ATTEMPTS = 6
"""How many times a write is tried in all (the pauses add up to about 0.6 s at most)."""
FIRST_PAUSE = 0.01
"""Seconds before the second try; each later pause doubles, with jitter."""

_SQLITE_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")
_MYSQL_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock
_POSTGRESQL_STATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, nowait


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (Django's or the driver's) is a lock conflict that will pass: the
    statement changed nothing and may be tried again."""
    from django.db import OperationalError

    if not isinstance(error, OperationalError) and type(error).__name__ not in (
        "OperationalError",
        "SerializationFailure",
        "DeadlockDetected",
        "LockNotAvailable",
    ):
        return False
    cause: BaseException | None = error
    while cause is not None:
        state = getattr(cause, "sqlstate", None)
        if state in _POSTGRESQL_STATES:
            return True
        args = getattr(cause, "args", ())
        if args and isinstance(args[0], int) and args[0] in _MYSQL_CODES:
            return True
        message = str(cause).lower()
        if any(text in message for text in _SQLITE_MESSAGES):
            return True
        cause = cause.__cause__
    return False


class _HasConnection(Protocol):
    connection: Any


def retry_transient[S: _HasConnection, **P, T](
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], T]:
    """Decorate a store method whose writes form one transaction of its own: a transient lock
    conflict runs it again (``ATTEMPTS`` in all); any other error, the last conflict, or a
    conflict inside the caller's ``atomic()`` block is raised."""

    @wraps(method)
    def retrying(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        pause = FIRST_PAUSE
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if attempt == ATTEMPTS or self.connection.in_atomic_block or not is_transient(exc):
                    raise
                logger.debug(
                    "%s met a lock conflict (%s); trying again in %.0f ms (try %d of %d)",
                    method.__qualname__,
                    exc,
                    pause * 1000,
                    attempt + 1,
                    ATTEMPTS,
                )
            time.sleep(pause * (0.5 + random.random()))
            pause *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    return retrying
