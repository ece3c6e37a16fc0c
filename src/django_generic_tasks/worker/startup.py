"""What a worker waits for before it claims: this app's migrations, applied."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("django_generic_tasks.worker")

SCHEMA_POLL = 1.0
"""Seconds between two looks at the migrations while a worker waits for ``migrate``."""


def wait_for_migrations(database: str, stop: threading.Event) -> None:
    """Before ``migrate``: say so once, then wait quietly until this app's migrations are
    applied on ``database`` (or ``stop`` is set). An unreachable database is left to the
    worker's main loop, which reconnects."""
    from django.db import DatabaseError, connections

    from ..store.readiness import MIGRATE_HINT, describe_unapplied, unapplied_migrations

    told = False
    while not stop.is_set():
        connection = connections[database]
        try:
            pending = unapplied_migrations(connection)
        except DatabaseError:
            connection.close()
            return
        if not pending:
            if told:
                logger.info("Migrations applied on database %r: starting", database)
            return
        if not told:
            logger.error(
                "%s %s; this worker waits for them and starts by itself.",
                describe_unapplied(pending, database),
                MIGRATE_HINT,
            )
            told = True
        connection.close()  # no session held open while waiting
        stop.wait(SCHEMA_POLL)
