"""Settings of the Django-task benchmark. ``BENCH_ENGINE`` = ``sqlite`` (``BENCH_DB``: the file),
``postgresql`` or ``mysql`` (``BENCH_DB``: the database on 127.0.0.1)."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["django_generic_tasks", "django_tasks_db", "djtbench"]
ENGINE = os.environ.get("BENCH_ENGINE", "sqlite")
NAME = os.environ.get("BENCH_DB", "/tmp/djtbench.sqlite3")
if ENGINE == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": NAME,
            # What docs/how-to/backends.md recommends for SQLite beside a worker.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
else:
    MYSQL = ENGINE == "mysql"
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql" if MYSQL else "django.db.backends.postgresql",
            "NAME": NAME,
            "USER": "root" if MYSQL else "postgres",
            "HOST": "127.0.0.1",
            "PORT": 3306 if MYSQL else 5432,
            "CONN_MAX_AGE": None,  # persistent connections, for both systems
            **({"OPTIONS": {"charset": "utf8mb4"}} if MYSQL else {}),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TASKS = {
    "default": {"BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend"},
    "ours": {"BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend"},
    "dtdb": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
