"""The database worker (``manage.py tasks_worker``): claims, runs and finishes ``TaskRun`` rows."""

from .notify import notify_workers
from .runner import Worker, WorkerOptions

__all__ = ["Worker", "WorkerOptions", "notify_workers"]
