"""Flow control: each run's concurrency and rate limit keys, the paused queues and tasks, and
the rate limits' buckets.

The claim counts a key's running runs through ``dgt_taskrun_flow_running``: partial (running
runs only) on PostgreSQL and SQLite; on MariaDB/MySQL, which have no partial indexes, a plain
index on (concurrency_key, status).
"""

from typing import Any

from django.db import migrations, models

TABLE = "django_generic_tasks_taskrun"


def _forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor in ("postgresql", "sqlite"):
        schema_editor.execute(
            f"CREATE INDEX dgt_taskrun_flow_running ON {TABLE} (concurrency_key) "
            "WHERE concurrency_key IS NOT NULL AND status = 'running'"
        )
    else:
        schema_editor.execute(
            f"CREATE INDEX dgt_taskrun_flow_running ON {TABLE} (concurrency_key, status)"
        )


def _backward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor in ("postgresql", "sqlite"):
        schema_editor.execute("DROP INDEX dgt_taskrun_flow_running")
    else:
        schema_editor.execute(f"DROP INDEX dgt_taskrun_flow_running ON {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0011_mysql_open_key_nopad")]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="concurrency_key",
            field=models.CharField(
                blank=True,
                help_text="The runs sharing this key share the task's concurrency limit.",
                max_length=255,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="taskrun",
            name="concurrency_limit",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="taskrun",
            name="rate_key",
            field=models.CharField(
                blank=True,
                help_text="The runs sharing this key share the task's rate limit.",
                max_length=255,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="taskrun",
            name="rate_interval",
            field=models.FloatField(
                blank=True, help_text="Seconds between two starts at the rate limit.", null=True
            ),
        ),
        migrations.AddField(
            model_name="taskrun",
            name="rate_turn",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="The attempt whose start the rate limit has given a time (run_after).",
                null=True,
            ),
        ),
        migrations.CreateModel(
            name="FlowPause",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(help_text="queue or task", max_length=8)),
                ("name", models.CharField(max_length=255)),
                ("paused_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "paused queue or task",
                "verbose_name_plural": "paused queues and tasks",
                "default_permissions": (),
                "constraints": [
                    models.UniqueConstraint(fields=("kind", "name"), name="dgt_pause_key")
                ],
            },
        ),
        migrations.CreateModel(
            name="RateBucket",
            fields=[
                ("key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                (
                    "next_at",
                    models.DateTimeField(help_text="The earliest start of the key's next run."),
                ),
            ],
            options={"verbose_name": "rate limit bucket", "default_permissions": ()},
        ),
        migrations.RunPython(_forward, _backward, atomic=False, elidable=False),
    ]
