"""Settings for django-tasks-db's ``db_worker`` started by the DjangoTasksBackend tests.

The suite's settings plus the file-recording tasks app, a ``db`` tasks alias, and the test
database the pytest process created (``TASKS_TEST_DB_NAME``).
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.workerapp"]
TASKS = {
    "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}
DATABASES["default"]["NAME"] = os.environ.get("TASKS_TEST_DB_NAME", DATABASES["default"]["NAME"])
