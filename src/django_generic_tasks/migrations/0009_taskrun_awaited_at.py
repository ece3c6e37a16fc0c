"""``awaited_at`` and, on PostgreSQL, the trigger that tells ``handle.wait()`` a run finished.

The trigger fires only for runs someone waits for (``awaited_at`` set by ``wait()``), when
their status becomes final, whatever statement did it (a worker's batch, a cancel, a lost run
given up, the admin): one ``NOTIFY django_generic_tasks_finished, '<run id>'`` each. Runs
nobody waits for cost the ``WHEN`` test only.
"""

from django.db import migrations, models

from ._postgresql import on_postgresql

CHANNEL = "django_generic_tasks_finished"
TABLE = "django_generic_tasks_taskrun"

CREATE = f"""
CREATE OR REPLACE FUNCTION dgt_taskrun_finished() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS dgt_taskrun_finished ON {TABLE};
CREATE TRIGGER dgt_taskrun_finished AFTER UPDATE OF status ON {TABLE}
    FOR EACH ROW WHEN (
        NEW.awaited_at IS NOT NULL
        AND NEW.status IN ('succeeded', 'failed', 'discarded', 'cancelled')
        AND OLD.status IS DISTINCT FROM NEW.status
    )
    EXECUTE FUNCTION dgt_taskrun_finished();
"""

DROP = f"""
DROP TRIGGER IF EXISTS dgt_taskrun_finished ON {TABLE};
DROP FUNCTION IF EXISTS dgt_taskrun_finished();
"""


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0008_taskrun_cancel_requested_at")]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="awaited_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When someone first waited for the run (handle.wait() on PostgreSQL: "
                "its finish sends a notice).",
                null=True,
            ),
        ),
        migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP), elidable=False),
    ]
