"""``python manage.py tasks_worker``: run the tasks stored by ``DatabaseBackend``."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_generic_tasks.worker import Worker, WorkerOptions


class Command(BaseCommand):
    """Claim due runs in batches and run them on threads until SIGTERM/SIGINT."""

    help = (
        "Run background tasks stored in the database (DatabaseBackend). SIGTERM/SIGINT finish "
        "in-flight runs within --grace seconds; a second signal exits at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """The worker's options."""
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            default=[],
            help="Queue to take runs from (repeat, or comma-separate; default: all queues).",
        )
        parser.add_argument("--concurrency", type=int, default=4, help="Threads (default 4).")
        parser.add_argument(
            "--batch",
            type=int,
            default=100,
            help="Most runs claimed per query (default 100; fewer while runs are slow).",
        )
        parser.add_argument("--once", action="store_true", help="Run what is due, then exit.")
        parser.add_argument("--max-tasks", type=int, default=None, help="Exit after N runs.")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Idle poll interval, seconds (default 1)."
        )
        parser.add_argument(
            "--lease", type=float, default=30.0, help="Lease of a claimed run, seconds."
        )
        parser.add_argument(
            "--grace", type=float, default=30.0, help="Seconds to finish in-flight runs on stop."
        )
        parser.add_argument("--database", default="default", help="Database alias.")
        parser.add_argument(
            "--no-listen", action="store_true", help="Poll even on PostgreSQL (no LISTEN)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the worker from the options and run it."""
        queues = tuple(q.strip() for value in options["queues"] for q in value.split(",") if q)
        for name, minimum in (("concurrency", 1), ("batch", 1), ("max_tasks", 1)):
            value = options[name]
            if value is not None and value < minimum:
                raise CommandError(f"--{name.replace('_', '-')} must be at least {minimum}.")
        for name in ("interval", "lease"):
            if options[name] <= 0:
                raise CommandError(f"--{name} must be positive.")
        if options["grace"] < 0:
            raise CommandError("--grace must not be negative.")
        if options["verbosity"] >= 1:
            self._log_to_stderr(options["verbosity"])
        worker = Worker(
            WorkerOptions(
                queues=queues,
                concurrency=options["concurrency"],
                batch=options["batch"],
                interval=options["interval"],
                lease=options["lease"],
                grace=options["grace"],
                once=options["once"],
                max_tasks=options["max_tasks"],
                database=options["database"],
                listen=not options["no_listen"],
            )
        )
        worker.run()

    def _log_to_stderr(self, verbosity: int) -> None:
        worker_logger = logging.getLogger("django_generic_tasks.worker")
        worker_logger.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
        if _emits_somewhere(worker_logger):
            return  # the project's LOGGING already shows these records
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        worker_logger.addHandler(handler)


def _emits_somewhere(logger: logging.Logger) -> bool:
    """Whether a handler other than a ``NullHandler`` receives ``logger``'s records."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False
