"""The test suite's one settings module. ``DATABASE_URL`` picks PostgreSQL (``postgres://``),
MariaDB/MySQL (``mysql://``), else SQLite."""

import os
import tempfile
from urllib.parse import urlparse

import django

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_generic_tasks",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
try:  # django-tasks-db, for DjangoTasksBackend's tests (its tables in the test database)
    import django_tasks_db  # noqa: F401
except (ImportError, ValueError):
    pass
else:
    INSTALLED_APPS.append("django_tasks_db")
ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"  # the live server (admin page tests) needs one
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Django's advice for test suites: a fast hasher (the default PBKDF2 takes ~0.5 s per user the
# admin and security tests create or log in; no test is about password hashing).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _test_file(name: str) -> str:
    """The test database's file beside ``name`` (one per pytest-xdist worker)."""
    stem = os.path.splitext(os.path.abspath(name))[0]
    return f"{stem}-test{os.environ.get('PYTEST_XDIST_WORKER', '')}.sqlite3"


def _database(url: str | None) -> dict[str, object]:
    if not url or url.startswith("sqlite"):
        name = os.environ.get("TASKS_TEST_SQLITE", "tests.sqlite3")
        # The test database is a file, as in every deployment: an in-memory one shares one
        # cache between threads, where a second writer fails at once ("database table is
        # locked") instead of waiting its turn, a contention no user's database has.
        test_name = os.environ.get("TASKS_TEST_SQLITE_TEST") or _test_file(name)
        database: dict[str, object] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "TEST": {"NAME": test_name},
        }
        if os.environ.get("TASKS_TEST_SQLITE_DEPLOYED"):
            # The process tests' write transactions take the write lock when they begin, as
            # docs/how-to/backends.md recommends for a deployment: a deferred one that reads
            # first, then writes beside a worker, fails at once with "database is locked"
            # (`migrate` did, once). The journal and the 5 s busy timeout stay Django's
            # defaults, which a test locking the whole file relies on.
            database["OPTIONS"] = {"transaction_mode": "IMMEDIATE"}
        return database
    parsed = urlparse(url)
    if parsed.scheme == "mysql":
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": parsed.path.lstrip("/") or "test",
            "USER": parsed.username or "root",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.hostname or "127.0.0.1",
            "PORT": parsed.port or 3306,
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    return {
        # Django's, emptying tables between tests by DELETE (tests/postgresql_backend/base.py).
        "ENGINE": "tests.postgresql_backend",
        "NAME": parsed.path.lstrip("/") or "test",
        "USER": parsed.username or "postgres",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.hostname or "127.0.0.1",
        "PORT": parsed.port or 5432,
    }


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, for the tests where two threads write at once: the in-memory test database
    # fails a second writer at once, where a file makes it wait its turn like in production.
    DATABASES["sqlite_file"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), f"dgt-tests-{os.getpid()}.sqlite3"),
        "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"dgt-tests-{os.getpid()}-t.sqlite3")},
    }
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"django_generic_tasks": {"handlers": ["null"], "level": "DEBUG"}},
}
if django.VERSION >= (6, 0):
    # Django's own tasks: ``default`` stays Django's; ``dgt`` is this project's database
    # backend (tests/djtasks.py defines its functions; the process tests' workers run them).
    TASKS = {
        "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
        "dgt": {
            "BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend",
            "QUEUES": ["default", "queue-1", "other"],
        },
    }
