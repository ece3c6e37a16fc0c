"""PostgreSQL: an index of the waiting runs by concurrency key, for the claim through the
limits (``store.sql.postgresql.FLOW_LOCK_KEYS`` and ``CLAIM_LIMITED``).

It serves a loose scan of the keys with waiting runs (one probe per key, however many runs
wait), each key's first runs in claim order, and (``concurrency_key IS NULL``) the waiting
runs without a key in claim order; and the due rate-limited runs still to be given a turn
(``dgt_taskrun_rate_waiting``: only rate-limited runs enter it). Partial (waiting runs only):
a claimed or finished run leaves them, so they grow with the backlog, not with the table. SQLite and
MariaDB/MySQL keep their claim (one claim through the limits at a time) and get no index.
"""

from typing import Any

from django.db import migrations

TABLE = "django_generic_tasks_taskrun"


def _forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX dgt_taskrun_flow_waiting ON {TABLE} "
            "(concurrency_key, priority DESC, run_after) "
            "WHERE status IN ('scheduled', 'ready')"
        )
        schema_editor.execute(
            f"CREATE INDEX dgt_taskrun_rate_waiting ON {TABLE} (run_after) "
            "WHERE rate_key IS NOT NULL AND status IN ('scheduled', 'ready')"
        )


def _backward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS dgt_taskrun_flow_waiting")
        schema_editor.execute("DROP INDEX IF EXISTS dgt_taskrun_rate_waiting")


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0013_workflows")]

    operations = [migrations.RunPython(_forward, _backward, elidable=False)]
