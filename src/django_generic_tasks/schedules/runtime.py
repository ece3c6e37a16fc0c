"""Building a scheduler from the settings, and running one beside the database worker."""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING

from .scheduler import Scheduler

if TYPE_CHECKING:
    from ..backends.base import Backend

logger = logging.getLogger("django_generic_tasks.schedules")


def slot_database(backend: Backend, database: str | None = None) -> str:
    """Where slots are claimed: ``database``, else where the backend stores runs
    (``run_database``), else default."""
    return database or backend.run_database or "default"


def build_scheduler(database: str | None = None) -> Scheduler:
    """A scheduler for every declared schedule, firing through ``TASKS_BACKEND``."""
    from django.conf import settings

    from ..conf import get_backend
    from ..exceptions import ConfigurationError
    from .registry import all_entries

    backend = get_backend()
    alias = slot_database(backend, database)
    if alias not in settings.DATABASES:
        raise ConfigurationError(f"The database {alias!r} is not in DATABASES.")
    from .firing import check_backend

    entries = all_entries()
    check_backend({entry.id: entry for entry in entries}, backend)  # fail before starting
    return Scheduler(entries, backend, alias)


class SchedulerThread(threading.Thread):
    """A scheduler on a daemon thread (``tasks_worker --scheduler``)."""

    def __init__(self, scheduler: Scheduler) -> None:
        super().__init__(name="tasks-scheduler", daemon=True)
        self.scheduler = scheduler

    def run(self) -> None:
        """Run the scheduler until ``stop()``."""
        try:
            self.scheduler.run()
        except Exception:
            logger.exception("The scheduler thread stopped")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the scheduler and wait for it."""
        self.scheduler.stop()
        self.join(timeout)


def log_to_stderr(name: str, verbosity: int) -> None:
    """Show ``name``'s records on stderr unless the project's ``LOGGING`` shows them."""
    target = logging.getLogger(name)
    target.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    current: logging.Logger | None = target
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return
        if not current.propagate:
            break
        current = current.parent
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    target.addHandler(handler)
