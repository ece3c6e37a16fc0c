"""The benchmark app (its ``tasks`` module holds the no-op tasks)."""

from django.apps import AppConfig


class DbBenchConfig(AppConfig):
    """The benchmark's tasks."""

    name = "dbbench"
