"""The steps of runs on the database (``TaskRun.steps``): the database worker's ``StepStore``."""

from __future__ import annotations

import threading
from typing import Any

from .schema import parse_run_id

__all__ = ["DatabaseSteps"]


class DatabaseSteps:
    """Loads and saves ``TaskRun.steps`` through the calling thread's connection to
    ``database``; a save is written only while the attempt that saves it still runs."""

    def __init__(self, database: str, stop: threading.Event) -> None:
        self.database = database
        self._stop = stop

    def _runs(self) -> Any:
        from ..models import TaskRun

        return TaskRun.objects.using(self.database)

    def load(self, run_id: str) -> dict[str, Any] | None:
        """The saved steps of ``run_id`` (``None``: none yet)."""
        pk = parse_run_id(run_id)
        found = self._runs().filter(pk=pk).values_list("steps", flat=True).first()
        return found if isinstance(found, dict) else None

    def save(self, run_id: str, attempt: int, state: dict[str, Any]) -> None:
        """Write ``state`` on the run while its attempt ``attempt`` is running (one UPDATE)."""
        pk = parse_run_id(run_id)
        self._runs().filter(pk=pk, status="running", attempt=attempt).update(steps=state)

    def stopping(self) -> bool:
        """Whether the worker is shutting down (runs stop at their next step boundary)."""
        return self._stop.is_set()
