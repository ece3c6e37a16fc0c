"""Progress writes: the one statement that stores a running run's ``Progress``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..status import TaskStatus
from .schema import parse_run_id

if TYPE_CHECKING:
    from ..progress import Progress
    from .base import RunStore


def write_progress(store: RunStore, run_id: str, progress: Progress) -> int:
    """Store ``progress`` on run ``run_id`` while it is running; return the rows written (0 once
    the run has finished, been cancelled or was never there)."""
    pk = parse_run_id(run_id)
    if pk is None:
        return 0
    return store.objects.filter(pk=pk, status=TaskStatus.RUNNING.value).update(
        progress=progress.to_json()
    )
