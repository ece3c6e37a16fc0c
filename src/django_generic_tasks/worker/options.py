"""The worker's options: their defaults and their validation, in this one place.

``manage.py tasks_worker`` builds its command-line options from these defaults and reports
these errors as ``--option`` errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..exceptions import InvalidOptionError


class WorkerOptionError(InvalidOptionError):
    """A worker option has a value the worker cannot use."""

    def __init__(self, option: str, requirement: str) -> None:
        super().__init__(f"{option} {requirement}")
        self.option = option
        self.requirement = requirement


MAX_COUNT = 1_000_000
"""The largest ``concurrency`` and ``batch`` (larger ones overflow SQL limits)."""
MAX_SECONDS = 7 * 24 * 3600
"""The longest ``interval``, ``lease`` and ``grace`` (a week)."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker runs (the ``tasks_worker`` command's options); validated when built."""

    queues: tuple[str, ...] = ()
    """Queues to take runs from; empty means every queue."""
    exclude_queues: tuple[str, ...] = ()
    """Queues never taken from, even when ``queues`` is empty (every queue but these)."""
    concurrency: int = 4
    """Threads running tasks."""
    async_concurrency: int = 100
    """Attempts of ``async def run()`` tasks awaited at once on the worker's event loop (0:
    they run on the threads, each in its own ``asyncio.run()``)."""
    async_db_threads: int = 8
    """Threads (so database connections) that async tasks' ``sync_to_async`` calls and
    Django's async ORM share."""
    async_stall_warning: float = 0.5
    """Seconds the event loop may go without turning before a warning names the async task
    that blocks it."""
    batch: int = 100
    """Most runs claimed per query. The worker claims fewer while runs are slow, so a
    backlog of long runs is shared among workers rather than hoarded by one."""
    interval: float = 1.0
    """Seconds between polls when idle (PostgreSQL also wakes on NOTIFY)."""
    lease: float = 30.0
    """Seconds a claim stays valid without a heartbeat before others may take the run."""
    grace: float = 30.0
    """Seconds in-flight runs get to finish after SIGTERM/SIGINT."""
    once: bool = False
    """Run what is due now, then exit."""
    max_tasks: int | None = None
    """Exit after this many runs."""
    lost_limit: int = 3
    """Extra attempts a run gets when its worker dies, beyond ``max_attempts``."""
    database: str = "default"
    """The connection alias runs are stored in."""
    listen: bool = True
    """Use LISTEN/NOTIFY on PostgreSQL."""
    prefetch: float = 0.1
    """Seconds of work (at the observed speed) to hold beyond the busy threads."""
    scheduler: bool = False
    """Also fire periodic tasks (the ``tasks_scheduler`` loop, on a thread)."""

    def __post_init__(self) -> None:
        for name in ("concurrency", "batch", "max_tasks"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise WorkerOptionError(name, "must be at least 1")
        for name in ("async_concurrency", "async_db_threads"):
            value = getattr(self, name)
            least = 0 if name == "async_concurrency" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise WorkerOptionError(name, f"must be at least {least}")
            if value > MAX_COUNT:
                raise WorkerOptionError(name, f"must be at most {MAX_COUNT:,}")
        if not isinstance(self.async_stall_warning, int | float) or not (
            0 < self.async_stall_warning <= MAX_SECONDS
        ):
            raise WorkerOptionError("async_stall_warning", "must be a positive number of seconds")
        for name in ("concurrency", "batch"):
            if getattr(self, name) > MAX_COUNT:
                raise WorkerOptionError(name, f"must be at most {MAX_COUNT:,}")
        for name in ("interval", "lease"):
            if not getattr(self, name) > 0:
                raise WorkerOptionError(name, "must be positive")
        for name in ("grace", "prefetch", "lost_limit"):
            if not getattr(self, name) >= 0:
                raise WorkerOptionError(name, "must not be negative")
        for name in ("interval", "lease", "grace"):
            if not getattr(self, name) <= MAX_SECONDS:
                raise WorkerOptionError(name, f"must be at most {MAX_SECONDS:,} seconds")
        if not isinstance(self.database, str) or not self.database:
            raise WorkerOptionError("database", "must be a connection alias")
        if any(not isinstance(q, str) or not q for q in self.queues):
            raise WorkerOptionError("queues", "must be non-empty names")
        if any(not isinstance(q, str) or not q for q in self.exclude_queues):
            raise WorkerOptionError("exclude_queues", "must be non-empty names")
        if both := sorted(set(self.queues) & set(self.exclude_queues)):
            raise WorkerOptionError(
                "exclude_queues", f"names a queue --queue also names: {', '.join(both)}"
            )


DEFAULTS = WorkerOptions()
"""The default options (the command's defaults come from here)."""


def parse_queues(values: Iterable[str]) -> tuple[str, ...]:
    """``--queue`` / ``--exclude-queue`` values (repeated and/or comma-separated) as a tuple
    of queue names.

    ``WorkerOptionError`` when values were given but name no queue (``--queue "$UNSET"``):
    no ``--queue`` means every queue, and an empty one must not fail open to that.
    """
    values = list(values)
    names = tuple(q.strip() for value in values for q in value.split(",") if q.strip())
    if values and not names:
        raise WorkerOptionError("queues", "names no queue (leave it out to take every queue)")
    return names
