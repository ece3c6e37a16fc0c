"""The handle that ``Task.start()`` returns: a run's id, status and result, and the way to
refresh, wait for or cancel it.

It sits above ``results`` (which decodes and waits) and ``status`` (the values it carries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import ResultNotAvailableError, UnsupportedOptionError
from . import results
from .status import AttemptRecord, ErrorInfo, TaskStatus

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..execution.progress import Progress


@dataclass(slots=True, eq=False)
class TaskHandle[R]:
    """A started task: its run id, task name and last known status.

    Backends that keep results (``supports_results``) can ``refresh()`` the handle and
    ``wait()`` for the run to finish; ``result`` is then what ``run()`` returned, as an ``R``.
    """

    id: str
    name: str
    status: TaskStatus
    backend: Backend | None = field(default=None, repr=False)
    result: R | None = None
    error: ErrorInfo | None = None
    attempts: int = 0
    progress: Progress | None = None
    """The last progress the run reported, on backends that store it (``supports_progress``)."""
    history: tuple[AttemptRecord, ...] = ()
    """The run's attempts, oldest first, on backends that keep them (``DatabaseBackend``)."""

    def _unread_copy(self) -> TaskHandle[Any]:
        """A plain ``TaskHandle`` of the same run, not yet read (``await_result()`` reads into
        it on another thread)."""
        return TaskHandle(id=self.id, name=self.name, status=self.status, backend=self.backend)

    def cancel(self) -> TaskHandle[R]:
        """Cancel the run: a waiting run at once, a running one cooperatively (its task sees
        ``cancel_requested`` / ``check_cancelled()``); return self, refreshed.

        ``UnsupportedOptionError`` on backends that cannot (``supports_cancel`` false).
        """
        if self.backend is None or not self.backend.supports_cancel:
            name = type(self.backend).__name__ if self.backend is not None else "this backend"
            raise UnsupportedOptionError(f"{name} cannot cancel runs; run {self.id} goes on.")
        self.backend.cancel_run(self.id)
        return self.refresh()

    def refresh(self) -> TaskHandle[R]:
        """Reload status, result and error from the backend; return self."""
        if self.backend is None or not self.backend.supports_results:
            name = type(self.backend).__name__ if self.backend is not None else "this backend"
            raise ResultNotAvailableError(f"{name} does not keep task results; cannot refresh.")
        fresh = self.backend.get_result(self.id)
        self.status, self.error = fresh.status, fresh.error
        self.result = results.decode_result(self.name, fresh.result)
        self.attempts, self.progress = fresh.attempts, fresh.progress
        self.history = fresh.history
        return self

    def wait(self, timeout: float | None = None) -> R:
        """Block until the run finishes and return its result (``None`` for ``timeout``:
        no limit).

        Raises ``RunFailedError`` (with the run's ``error`` and ``status``) when it failed,
        was discarded or cancelled, ``TimeoutError`` when ``timeout`` seconds pass first, and
        ``ResultNotAvailableError`` at once on backends that keep no results. On PostgreSQL
        the database backend wakes on ``LISTEN/NOTIFY``; other backends poll with a backoff.
        """
        return results.wait_for(self, timeout)

    async def await_result(self, timeout: float | None = None) -> R:
        """``wait()`` for async code: the same result and errors, without blocking the loop."""
        return await results.await_result(self, timeout)
