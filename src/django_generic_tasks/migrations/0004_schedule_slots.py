"""The slot table of periodic tasks: one row per claimed (schedule, slot time), unique."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_generic_tasks", "0003_store_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="ScheduleSlot",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("schedule_id", models.CharField(max_length=255)),
                ("slot_at", models.DateTimeField()),
                ("run_id", models.CharField(max_length=36)),
                ("claimed_at", models.DateTimeField()),
                ("fired_at", models.DateTimeField(blank=True, null=True)),
                ("lease_until", models.DateTimeField(blank=True, null=True)),
                ("owner", models.CharField(blank=True, default="", max_length=255)),
            ],
            options={
                "verbose_name": "schedule",
                "verbose_name_plural": "schedules",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("schedule_id", "slot_at"), name="dgt_slot_unique"
                    )
                ],
            },
        ),
    ]
