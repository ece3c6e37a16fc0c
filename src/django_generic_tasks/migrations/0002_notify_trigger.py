"""On PostgreSQL, wake idle workers (``LISTEN django_generic_tasks``) whenever runs are inserted."""

from django.db import migrations

from ._postgresql import on_postgresql

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


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0001_initial")]

    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP), elidable=False)]
