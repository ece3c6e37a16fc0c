from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_generic_tasks", "0006_taskrun_progress"),
    ]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="trace_context",
            field=models.CharField(
                blank=True,
                help_text="W3C traceparent of the span that started the run (OpenTelemetry).",
                max_length=255,
                null=True,
            ),
        ),
    ]
