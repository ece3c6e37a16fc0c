"""Registers Celery's generic task in processes that use Celery (see ``backends.celery``).

Imported by Django's app loading (``autodiscover_modules("tasks")``) and by Celery's
``app.autodiscover_tasks()``, so a plain ``celery -A proj worker`` knows the task. It costs
nothing in processes that have not imported Celery.
"""

import sys

if "celery" in sys.modules:
    from .backends import celery as _celery  # noqa: F401
