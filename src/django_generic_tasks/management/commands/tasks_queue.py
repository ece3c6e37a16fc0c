"""``python manage.py tasks_queue pause|resume NAME`` (``--task``: a task, not a queue), and
``tasks_queue list``: pause and resume queues and tasks; a paused one's runs wait."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_generic_tasks.core import pausing
from django_generic_tasks.exceptions import TasksError

from ._arguments import database_alias


class Command(BaseCommand):
    """Pause, resume or list paused queues and tasks of the configured backend (or of
    ``DatabaseBackend`` on ``--database``)."""

    help = "Pause or resume a queue (or, with --task, a task); list what is paused."

    def add_arguments(self, parser: CommandParser) -> None:
        """``pause NAME``, ``resume NAME``, ``list``; ``--task``, ``--database``."""
        parser.add_argument("action", choices=["pause", "resume", "list"])
        parser.add_argument("name", nargs="?", help="The queue (or, with --task, the task).")
        parser.add_argument("--task", action="store_true", help="NAME is a task's name.")
        parser.add_argument("--database", default=None, help="Use DatabaseBackend on this alias.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Do it; say what changed."""
        backend = None
        if options["database"] is not None:
            from django_generic_tasks.backends.database import DatabaseBackend

            backend = DatabaseBackend(database_alias(options["database"]))
        action, name, kind = (
            options["action"],
            options["name"],
            "task" if options["task"] else "queue",
        )
        try:
            if action == "list":
                self._list(backend)
                return
            if not name:
                raise CommandError(f"tasks_queue {action} needs the {kind}'s name.")
            if action == "pause":
                pause = pausing.pause_task if kind == "task" else pausing.pause_queue
                changed = pause(name, backend=backend)
                said = "paused" if changed else "was already paused"
            else:
                resume = pausing.resume_task if kind == "task" else pausing.resume_queue
                changed = resume(name, backend=backend)
                said = "resumed" if changed else "was not paused"
        except TasksError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{kind.capitalize()} {name!r} {said}.")

    def _list(self, backend: Any) -> None:
        found = pausing.paused(backend=backend)
        if not found:
            self.stdout.write("Nothing is paused.")
            return
        for item in found:
            since = timezone.localtime(item.since).strftime("%Y-%m-%d %H:%M:%S")
            self.stdout.write(f"{item.kind:<5}  {item.name}  paused since {since}")
