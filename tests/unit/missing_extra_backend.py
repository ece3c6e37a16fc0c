"""A backend module whose optional dependency is missing: importing it raises, like a real one
(``backends/celery.py`` without Celery installed) does. Used by the settings and checks tests."""

from django_generic_tasks.exceptions import MissingDependencyError

raise MissingDependencyError(
    "MissingExtraBackend needs the 'nonexistent' package: "
    "pip install 'django-generic-tasks[nonexistent]'."
)
