"""The database worker (``manage.py tasks_worker``): claims runs through the store, runs them
through ``execution.execute()``, and writes their outcomes back through the store."""

from .notify import notify_workers
from .options import WorkerOptionError, WorkerOptions
from .runner import Worker

__all__ = ["Worker", "WorkerOptionError", "WorkerOptions", "notify_workers"]
