"""Whether a database holds the run store's tables: this app's migrations, applied or not.

The worker waits for them, ``DatabaseBackend.enqueue()`` turns a missing table into an error
that says what to run, and system check ``django_generic_tasks.W101`` reports them.
"""

from __future__ import annotations

from typing import Any

APP_LABEL = "django_generic_tasks"

MIGRATE_HINT = "Run `python manage.py migrate`"
"""What a missing table asks the user to do (the check's hint, the worker's log, the error)."""

_MISSING_MARKERS = (
    "does not exist",  # PostgreSQL: relation "…" does not exist; column "…" does not exist
    "doesn't exist",  # MariaDB/MySQL 1146: Table '…' doesn't exist
    "no such table",  # SQLite
    "no column named",  # SQLite: table … has no column named …
    "no such column",  # SQLite
    "unknown column",  # MariaDB/MySQL 1054
)


def unapplied_migrations(connection: Any) -> list[str]:
    """This app's migrations not applied on ``connection`` (``app.name``), oldest first.

    Reads ``django_migrations`` (and the migration files); raises the database's error when
    it cannot be reached.
    """
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    applied = set(loader.applied_migrations or ())
    targets = [key for key in loader.graph.leaf_nodes() if key[0] == APP_LABEL]
    pending: list[str] = []
    for target in targets:
        for key in loader.graph.forwards_plan(target):
            if key[0] == APP_LABEL and key not in applied and f"{key[0]}.{key[1]}" not in pending:
                pending.append(f"{key[0]}.{key[1]}")
    return pending


def describe_unapplied(pending: list[str], alias: str) -> str:
    """One sentence naming the unapplied migrations of ``alias`` (the first few)."""
    shown = ", ".join(pending[:3]) + (f" and {len(pending) - 3} more" if len(pending) > 3 else "")
    return (
        f"{len(pending)} migration(s) of django_generic_tasks are not applied to database "
        f"{alias!r} ({shown}): the run store's tables are missing or out of date."
    )


def is_missing_schema_error(exc: BaseException) -> bool:
    """``exc`` is a database error saying a run store table or column does not exist."""
    from django.db import DatabaseError

    if not isinstance(exc, DatabaseError):
        return False
    text = str(exc).lower()
    if not any(marker in text for marker in _MISSING_MARKERS):
        return False
    return APP_LABEL in text or "no such column" in text or "unknown column" in text
