"""``python manage.py tasks_worker``: run the tasks stored by ``DatabaseBackend``."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_generic_tasks.worker import Worker, WorkerOptionError, WorkerOptions
from django_generic_tasks.worker.options import DEFAULTS, parse_queues

from ._arguments import database_alias


class Command(BaseCommand):
    """Claim due runs in batches and run them on threads until SIGTERM/SIGINT."""

    help = (
        "Run background tasks stored in the database (DatabaseBackend). SIGTERM/SIGINT finish "
        "in-flight runs within --grace seconds; a second signal exits at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """The worker's options (defaults from ``WorkerOptions``)."""
        d = DEFAULTS
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            default=[],
            help="Queue to take runs from (repeat, or comma-separate; default: all queues).",
        )
        parser.add_argument(
            "--exclude-queue",
            action="append",
            dest="exclude_queues",
            default=[],
            help="Queue never to take runs from (repeat, or comma-separate): with no --queue, "
            "serve every queue but these.",
        )
        parser.add_argument(
            "--concurrency", type=int, default=d.concurrency, help="Threads (default %(default)s)."
        )
        parser.add_argument(
            "--async-concurrency",
            type=int,
            default=d.async_concurrency,
            help="Attempts of async def run() tasks awaited at once on the worker's event loop "
            "(default %(default)s; 0: on the threads, one asyncio.run() each).",
        )
        parser.add_argument(
            "--async-db-threads",
            type=int,
            default=d.async_db_threads,
            help="Threads (database connections) that async tasks' sync_to_async calls and "
            "async ORM share (default %(default)s).",
        )
        parser.add_argument(
            "--async-stall-warning",
            type=float,
            default=d.async_stall_warning,
            help="Seconds the event loop may be blocked before a warning names the async task "
            "blocking it (default %(default)s).",
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=d.batch,
            help="Most runs claimed per query (default %(default)s; fewer while runs are slow).",
        )
        parser.add_argument("--once", action="store_true", help="Run what is due, then exit.")
        parser.add_argument("--max-tasks", type=int, default=d.max_tasks, help="Exit after N runs.")
        parser.add_argument(
            "--interval",
            type=float,
            default=d.interval,
            help="Idle poll interval, seconds (default %(default)s).",
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=d.lease,
            help="Lease of a claimed run, seconds (default %(default)s).",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=d.grace,
            help="Seconds to finish in-flight runs on stop (default %(default)s).",
        )
        parser.add_argument("--database", default=d.database, help="Database alias.")
        parser.add_argument(
            "--no-listen", action="store_true", help="Poll even on PostgreSQL (no LISTEN)."
        )
        parser.add_argument(
            "--scheduler", action="store_true", help="Also fire periodic tasks (schedules)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the worker from the options and run it."""
        database_alias(options["database"])
        try:
            worker_options = WorkerOptions(
                queues=parse_queues(options["queues"]),
                exclude_queues=parse_queues(options["exclude_queues"]),
                concurrency=options["concurrency"],
                async_concurrency=options["async_concurrency"],
                async_db_threads=options["async_db_threads"],
                async_stall_warning=options["async_stall_warning"],
                batch=options["batch"],
                interval=options["interval"],
                lease=options["lease"],
                grace=options["grace"],
                once=options["once"],
                max_tasks=options["max_tasks"],
                database=options["database"],
                listen=not options["no_listen"],
                scheduler=options["scheduler"],
            )
        except WorkerOptionError as exc:
            flag = {"queues": "--queue", "exclude_queues": "--exclude-queue"}.get(
                exc.option, f"--{exc.option.replace('_', '-')}"
            )
            raise CommandError(f"{flag} {exc.requirement}.") from None
        if options["verbosity"] >= 1:
            self._log_to_stderr(options["verbosity"])
            if worker_options.scheduler:
                from django_generic_tasks.schedules.runtime import log_to_stderr

                log_to_stderr("django_generic_tasks.schedules", options["verbosity"])
        from django_generic_tasks import observability

        if observability.refresh():  # OpenTelemetry configured: queue gauges from this worker
            from django_generic_tasks.observability.metrics import observe_database_queues

            observe_database_queues(worker_options.database)
        Worker(worker_options).run()

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
