"""Progress writes: the one statement that stores a running run's ``Progress``, and the database
worker's progress sink that uses it."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..core.status import TaskStatus
from ..execution.progress import Progress, ThrottledProgressWriter
from .schema import parse_run_id

if TYPE_CHECKING:
    from . import RunStore


def write_progress(store: RunStore, run_id: str, progress: Progress) -> int:
    """Store ``progress`` on run ``run_id`` while it is running; return the rows written (0 once
    the run has finished, been cancelled or was never there)."""
    pk = parse_run_id(run_id)
    if pk is None:
        return 0
    return store.queue.runs.filter(pk=pk, status=TaskStatus.RUNNING.value).update(
        progress=progress.to_json()
    )


def database_writer(database: str) -> ThrottledProgressWriter:
    """The database worker's sink: writes through this thread's connection to ``database``;
    a failed write is logged and dropped (progress never fails a run)."""
    from django.db import Error, connections

    from . import for_connection

    logger = logging.getLogger("django_generic_tasks.worker")

    def write(run_id: str, progress: Progress) -> None:
        for attempt in range(3):  # a locked SQLite table (shared cache) is usually brief
            try:
                write_progress(for_connection(connections[database]), run_id, progress)
                return
            except Error as exc:
                if attempt == 2:
                    logger.warning("Could not store the progress of run %s (%s)", run_id, exc)
                    return
                time.sleep(0.05 * (attempt + 1))

    return ThrottledProgressWriter(write)
