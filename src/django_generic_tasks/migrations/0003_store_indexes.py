"""Idempotency keys per task, and each database's own indexes for the run store.

A key used to be unique among all unfinished runs; it is now unique per task (``task_name``,
``key``) among unfinished runs. Every row that satisfied the old rule satisfies the new one, so
the new index is built before the old one is dropped: there is never a moment without one.

PostgreSQL and SQLite keep the partial indexes of 0001 (claim, lease). MariaDB/MySQL have no
partial or functional indexes, so Django created none of them there; they get two stored
generated columns instead (``open_key``: the key while the run is unfinished, compared
byte for byte; ``waiting``: 1 while the run is claimable) and plain indexes on them (0001's
lease index, which Django created there without its condition, is replaced).

The indexes leave the model's ``Meta`` (state only): they differ per database.
"""

from typing import Any

from django.db import migrations

TABLE = "django_generic_tasks_taskrun"
UNFINISHED = "('scheduled', 'ready', 'running')"  # as in 0001: migrations keep their values
WAITING = "('scheduled', 'ready')"


def _forward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor in ("postgresql", "sqlite"):
        schema_editor.execute(
            f'CREATE UNIQUE INDEX dgt_taskrun_open_key ON {TABLE} (task_name, "key") '
            f'WHERE "key" IS NOT NULL AND status IN {UNFINISHED}'
        )
        schema_editor.execute("DROP INDEX IF EXISTS dgt_taskrun_unique_unfinished_key")
    elif vendor == "mysql":
        # 0001's indexes without their conditions (Django drops what MySQL cannot do).
        with schema_editor.connection.cursor() as cursor:
            existing = schema_editor.connection.introspection.get_constraints(cursor, TABLE)
        drops = "".join(
            f"DROP INDEX {name}, "
            for name in ("dgt_taskrun_lease", "dgt_taskrun_claim", "dgt_taskrun_open_key")
            if name in existing
        )
        schema_editor.execute(
            f"ALTER TABLE {TABLE} {drops}"
            "ADD COLUMN open_key varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin "
            f"AS (CASE WHEN status IN {UNFINISHED} THEN `key` END) STORED, "
            f"ADD COLUMN waiting tinyint AS (CASE WHEN status IN {WAITING} THEN 1 END) STORED, "
            "ADD UNIQUE INDEX dgt_taskrun_open_key (task_name, open_key), "
            "ADD INDEX dgt_taskrun_claim (waiting, priority DESC, run_after), "
            "ADD INDEX dgt_taskrun_lease (status, lease_expires_at)"
        )


def _backward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor in ("postgresql", "sqlite"):
        # Fails if two tasks now hold one key: the old rule cannot express that state.
        schema_editor.execute(
            f'CREATE UNIQUE INDEX dgt_taskrun_unique_unfinished_key ON {TABLE} ("key") '
            f"WHERE status IN {UNFINISHED}"
        )
        schema_editor.execute("DROP INDEX IF EXISTS dgt_taskrun_open_key")
    elif vendor == "mysql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} DROP INDEX dgt_taskrun_open_key, DROP INDEX dgt_taskrun_claim, "
            "DROP INDEX dgt_taskrun_lease, DROP COLUMN open_key, DROP COLUMN waiting"
        )


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0002_notify_trigger")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint("taskrun", "dgt_taskrun_unique_unfinished_key"),
                migrations.RemoveIndex("taskrun", "dgt_taskrun_claim"),
                migrations.RemoveIndex("taskrun", "dgt_taskrun_lease"),
            ],
            database_operations=[migrations.RunPython(_forward, _backward, elidable=False)],
        ),
    ]
