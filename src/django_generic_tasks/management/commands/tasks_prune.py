"""``python manage.py tasks_prune --older-than 7d``: delete old finished task runs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_generic_tasks import store
from django_generic_tasks.core.status import TaskStatus

from ._arguments import bounded, database_alias

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FINISHED = [s.value for s in store.FINISHED]
MAX_AGE = timedelta(days=1000 * 365)
"""The longest ``--older-than``: a cutoff this far back is still a date."""


def parse_age(text: str) -> timedelta:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"2w"`` as a timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not an age such as 7d, 12h, 30m, 90s or 2w.")
    try:
        age = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:
        age = timedelta.max
    if age > MAX_AGE:
        raise ValueError(f"{text!r} is too long an age (at most {MAX_AGE.days // 365} years).")
    return age


class Command(BaseCommand):
    """Delete finished runs that finished more than ``--older-than`` ago, and the dashboard's
    rollups and queue samples of that age."""

    help = "Delete finished task runs older than --older-than (e.g. 7d, 12h)."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--older-than``, ``--status``, ``--dry-run``, ``--database``."""
        parser.add_argument("--older-than", required=True, help="Age such as 7d, 12h, 30m.")
        parser.add_argument(
            "--status",
            action="append",
            default=[],
            help=f"Only runs with this final status (repeatable): {', '.join(_FINISHED)}.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, do not delete.")
        parser.add_argument("--batch", type=int, default=10_000, help="Rows per DELETE.")
        parser.add_argument("--database", default="default", help="Database alias.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Delete in batches so a million rows never hold one huge transaction."""
        database = database_alias(options["database"])
        try:
            age = parse_age(options["older_than"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        statuses = [s.strip() for value in options["status"] for s in value.split(",") if s]
        unknown = sorted(set(statuses) - set(_FINISHED))
        if unknown:
            raise CommandError(
                f"--status {', '.join(unknown)}: only finished statuses can be pruned "
                f"({', '.join(_FINISHED)})."
            )
        bounded(options["batch"], "--batch", 1, 1_000_000)
        cutoff = timezone.now() - age
        count = store.using(database).operations.prune(
            cutoff,
            [TaskStatus(s) for s in statuses] or store.FINISHED,
            batch=options["batch"],
            dry_run=options["dry_run"],
        )
        if options["dry_run"]:
            self.stdout.write(f"Would delete {count} task runs.")
            return
        self.stdout.write(f"Deleted {count} task runs finished before {cutoff.isoformat()}.")
        # The dashboard's rollups, queue samples and dead workers' heartbeats age out too.
        runs = store.using(database)
        rows = runs.observations.prune(cutoff) + runs.workers.prune(cutoff)
        self.stdout.write(f"Deleted {rows} dashboard rows (rollups, samples, heartbeats).")
