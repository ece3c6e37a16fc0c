"""MariaDB/MySQL: idempotency keys compare without padding.

0003's ``open_key`` column used ``utf8mb4_bin``, a PAD SPACE collation: ``"invoice-42"`` and
``"invoice-42 "`` compared equal, so a start with the second key returned the first key's run.
The column now uses the binary NO PAD collation of each server (MariaDB ``utf8mb4_nopad_bin``,
MySQL 8 ``utf8mb4_0900_bin``); the unique index is rebuilt with it. Every pair of keys distinct
before is distinct after, so the rebuild cannot fail. PostgreSQL and SQLite never pad: nothing
changes there.
"""

from typing import Any

from django.db import migrations

TABLE = "django_generic_tasks_taskrun"
UNFINISHED = "('scheduled', 'ready', 'running')"  # as in 0003: migrations keep their values


def _open_key(schema_editor: Any, collation: str) -> None:
    schema_editor.execute(
        f"ALTER TABLE {TABLE} MODIFY COLUMN open_key varchar(255) CHARACTER SET utf8mb4 "
        f"COLLATE {collation} AS (CASE WHEN status IN {UNFINISHED} THEN `key` END) STORED"
    )


def _forward(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    if connection.vendor == "mysql":
        _open_key(
            schema_editor,
            "utf8mb4_nopad_bin" if connection.mysql_is_mariadb else "utf8mb4_0900_bin",
        )


def _backward(apps: Any, schema_editor: Any) -> None:
    # Fails if two unfinished runs of a task now hold keys differing only in trailing spaces.
    if schema_editor.connection.vendor == "mysql":
        _open_key(schema_editor, "utf8mb4_bin")


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0010_taskrun_history")]

    # MariaDB/MySQL cannot roll DDL back: no transaction around it (Django refuses one).
    operations = [migrations.RunPython(_forward, _backward, atomic=False, elidable=False)]
