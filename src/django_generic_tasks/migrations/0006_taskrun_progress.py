from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_generic_tasks", "0005_observability"),
    ]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="progress",
            field=models.JSONField(
                blank=True, help_text="The last progress the running task reported.", null=True
            ),
        ),
    ]
