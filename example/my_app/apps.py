"""The example app (as in the README)."""

from django.apps import AppConfig


class MyAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "my_app"

    def ready(self) -> None:
        from . import tasks  # noqa: F401
