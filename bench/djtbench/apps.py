"""The benchmark app (its ``tasks`` module holds the functions)."""

from django.apps import AppConfig


class DjtbenchConfig(AppConfig):
    """``djtbench``."""

    name = "djtbench"
