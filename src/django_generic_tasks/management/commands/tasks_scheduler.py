"""``python manage.py tasks_scheduler``: fire the slots of every periodic task."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ._arguments import database_alias


class Command(BaseCommand):
    """Start each due slot through ``TASKS_BACKEND`` until SIGTERM/SIGINT."""

    help = (
        "Fire periodic tasks (tasks' `schedules` and TASKS_SCHEDULES) through TASKS_BACKEND. "
        "Run two for availability: each slot fires once however many run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """``--database``: where slots are claimed (default: the DatabaseBackend's, else
        ``default``)."""
        parser.add_argument("--database", default=None, help="Database alias of the slot table.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the scheduler and run it until a signal stops it."""
        from django_generic_tasks.exceptions import TasksError
        from django_generic_tasks.schedules.runtime import build_scheduler, log_to_stderr

        try:
            scheduler = build_scheduler(database_alias(options["database"]))
        except TasksError as exc:
            raise CommandError(str(exc)) from None
        if options["verbosity"] >= 1:
            log_to_stderr("django_generic_tasks.schedules", options["verbosity"])
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: scheduler.stop())
        scheduler.run()
