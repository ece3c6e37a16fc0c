"""On PostgreSQL, wake idle workers (``LISTEN django_generic_tasks``) whenever runs are inserted."""

from typing import Any

from django.db import migrations

CHANNEL = "django_generic_tasks"

CREATE = f"""
CREATE OR REPLACE FUNCTION dgt_taskrun_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS dgt_taskrun_notify ON django_generic_tasks_taskrun;
CREATE TRIGGER dgt_taskrun_notify AFTER INSERT ON django_generic_tasks_taskrun
    FOR EACH STATEMENT EXECUTE FUNCTION dgt_taskrun_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS dgt_taskrun_notify ON django_generic_tasks_taskrun;
DROP FUNCTION IF EXISTS dgt_taskrun_notify();
"""


def _create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def _drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0001_initial")]

    operations = [migrations.RunPython(_create, _drop, elidable=False)]
