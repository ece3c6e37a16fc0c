"""Settings of the benchmark project. ``BENCH_SYSTEM`` = ``ours`` or ``dtdb``;
``BENCH_ENGINE`` = ``postgresql`` (default) or ``mysql`` (MariaDB on 127.0.0.1:3306)."""

import os

SYSTEM = os.environ.get("BENCH_SYSTEM", "ours")
SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["django_generic_tasks" if SYSTEM == "ours" else "django_tasks_db", "dbbench"]
MYSQL = os.environ.get("BENCH_ENGINE", "postgresql") == "mysql"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql" if MYSQL else "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_DB", "dgt_bench"),
        "USER": "root" if MYSQL else "postgres",
        "HOST": "127.0.0.1",
        "PORT": 3306 if MYSQL else 5432,
        # Persistent connections: the strongest configuration of every system.
        "CONN_MAX_AGE": None,
        **({"OPTIONS": {"charset": "utf8mb4"}} if MYSQL else {}),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
TASKS_BACKEND = "django_generic_tasks.backends.DatabaseBackend"
LOGGING = {"version": 1, "disable_existing_loggers": False}
