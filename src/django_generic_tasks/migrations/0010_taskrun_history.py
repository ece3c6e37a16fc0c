from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_generic_tasks", "0009_taskrun_awaited_at")]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="history",
            field=models.JSONField(
                blank=True,
                help_text="Earlier attempts (retried or lost), oldest first, at most the last "
                "10; the last attempt is the run itself.",
                null=True,
            ),
        ),
    ]
