"""Progress of a running run: ``Task.report_progress()``, where it goes, and how it is stored.

Every report fires the ``task_progress`` signal. Backends that store progress
(``supports_progress``: ``DatabaseBackend``) register a sink under their name while their worker
runs; the database worker's sink (``ThrottledProgressWriter``) writes at most one UPDATE per run
every ``PROGRESS_WRITE_EVERY`` seconds and the latest value when the attempt ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..exceptions import InvalidOptionError
from ..middleware import forget_chains

__all__ = [
    "PROGRESS_WRITE_EVERY",
    "Progress",
    "ProgressSink",
    "ProgressSinks",
    "ThrottledProgressWriter",
    "register_sink",
    "sink_for",
    "sinks",
    "unregister_sink",
]

logger = logging.getLogger("django_generic_tasks")

PROGRESS_WRITE_EVERY = 0.5
"""Seconds between two progress writes of one run on the database backend."""

MAX_MESSAGE = 1000
"""Longest progress message stored (longer ones are cut)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a run has got: ``done`` of ``total`` (``None``: unknown), with a message."""

    done: float
    total: float | None
    message: str
    updated_at: datetime

    @property
    def fraction(self) -> float | None:
        """``done / total`` clamped to 0..1; ``None`` when the total is unknown or zero."""
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    def to_json(self) -> dict[str, Any]:
        """The stored / API form: ``{"done", "total", "message", "updated_at"}``."""
        return {
            "done": self.done,
            "total": self.total,
            "message": self.message,
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_json(cls, value: Any) -> Progress | None:
        """The ``Progress`` stored as ``value`` (``None`` for NULL or an unreadable value)."""
        if not isinstance(value, Mapping):
            return None
        try:
            return cls(
                value["done"],
                value.get("total"),
                str(value.get("message", "")),
                datetime.fromisoformat(value["updated_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def make_progress(done: Any, total: Any, message: Any) -> Progress:
    """A validated ``Progress`` stamped now; ``InvalidOptionError`` for bad values."""

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0

    if not number(done):
        raise InvalidOptionError(f"report_progress(done=...) must be a number >= 0 (got {done!r}).")
    if total is not None and not number(total):
        raise InvalidOptionError(
            f"report_progress(total=...) must be a number >= 0 or None (got {total!r})."
        )
    if not isinstance(message, str):
        raise InvalidOptionError(f"report_progress(message=...) must be a str (got {message!r}).")
    return Progress(done, total, message[:MAX_MESSAGE], datetime.now(UTC))


class ProgressSink(Protocol):
    """Where a backend stores progress reports of the runs it executes."""

    def report(self, run_id: str, progress: Progress) -> None:
        """Store (or buffer) ``progress`` for ``run_id``."""


class ProgressSinks:
    """Where this process sends progress reports: one sink per backend name."""

    def __init__(self) -> None:
        self._sinks: dict[str, ProgressSink] = {}

    def register(self, backend: str, sink: ProgressSink) -> None:
        """Send progress of runs executed with backend name ``backend`` to ``sink``."""
        self._sinks[backend] = sink
        forget_chains()  # the progress middleware joins the chains of ``backend``

    def unregister(self, backend: str, sink: ProgressSink) -> None:
        """Stop sending progress to ``sink`` (if it is still the one registered)."""
        if self._sinks.get(backend) is sink:
            del self._sinks[backend]
            forget_chains()

    def sink_for(self, backend: str) -> ProgressSink | None:
        """The sink registered for backend name ``backend``, if any."""
        return self._sinks.get(backend)


sinks = ProgressSinks()
"""This process's progress sinks (its database worker registers one while it runs)."""

register_sink = sinks.register
unregister_sink = sinks.unregister
sink_for = sinks.sink_for


class ThrottledProgressWriter:
    """The database worker's sink: one write per run per ``every`` seconds, latest at the end.

    ``write(run_id, progress)`` does the UPDATE (on the calling thread's connection). A report
    within ``every`` seconds of the run's last write is kept and written by the next report
    after the interval or by ``finish(run_id)`` when the attempt ends.
    """

    def __init__(
        self,
        write: Callable[[str, Progress], None],
        every: float = PROGRESS_WRITE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[float, Progress | None]] = {}
        self._writing: dict[str, asyncio.Task[None]] = {}

    def report(self, run_id: str, progress: Progress) -> None:
        """Write ``progress`` now if the run's last write is old enough, else keep it."""
        now = self._clock()
        with self._lock:
            last = self._runs.get(run_id)
            if last is not None and now - last[0] < self._every:
                self._runs[run_id] = (last[0], progress)
                return
            self._runs[run_id] = (now, None)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(run_id, progress)
        else:  # an async run: never a database write on the event loop
            self._write_soon(loop, run_id, progress)

    def _write_soon(self, loop: asyncio.AbstractEventLoop, run_id: str, progress: Progress) -> None:
        """The write through ``sync_to_async`` (the run's database thread: its writes stay in
        order), as a task of the running loop that ``afinish`` waits for."""
        from asgiref.sync import sync_to_async

        write = loop.create_task(sync_to_async(self._write)(run_id, progress))
        self._writing[run_id] = write  # the run's writes run in order: the last one suffices

    async def afinish(self, run_id: str) -> None:
        """``finish`` on an event loop: wait for the run's write under way, then write its
        kept report through ``sync_to_async`` (never on the loop)."""
        write = self._writing.pop(run_id, None)
        if write is not None:
            try:
                await write
            except Exception as exc:  # progress never fails a run
                logger.warning("Could not store the progress of run %s (%s)", run_id, exc)
        last = self._runs.get(run_id)
        if last is not None and last[1] is not None:
            from asgiref.sync import sync_to_async

            await sync_to_async(self.finish)(run_id)
        else:
            self.finish(run_id)  # nothing kept: it only forgets the run

    def finish(self, run_id: str) -> None:
        """The attempt of ``run_id`` ended: write its kept report, forget the run."""
        if self._writing:  # an async run awaited on its own loop (asyncio.run()) wrote
            self._writing.pop(run_id, None)
        if not self._runs:  # the common case: the run reported nothing
            return
        with self._lock:
            last = self._runs.pop(run_id, None)
        if last is not None and last[1] is not None:
            self._write(run_id, last[1])


def report(task: Any, done: Any, total: Any, message: Any) -> Progress:
    """``Task.report_progress()``: fire ``task_progress``, hand the report to the run's sink."""
    from ..signals import task_progress

    progress = make_progress(done, total, message)
    # The Attempt that execution runs, or the RunContext once built: both name these.
    context = task.__dict__.get("_run_context") or task.context
    run_id, backend = context.run_id, context.backend
    if task_progress.receivers:
        task_progress.send(sender=type(task), task=task, run_id=run_id, progress=progress)
    sink = sinks.sink_for(backend)
    if sink is not None:
        sink.report(run_id, progress)
    return progress
