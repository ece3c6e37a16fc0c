from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_generic_tasks", "0007_taskrun_trace_context"),
    ]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="cancel_requested_at",
            field=models.DateTimeField(
                blank=True, help_text="When a cancel of the running run was requested.", null=True
            ),
        ),
    ]
