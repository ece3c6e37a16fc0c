"""What every backend is: the ``Backend`` protocol, its capability flags, and ``BaseBackend``.

``Task.start()`` builds an ``EnqueueRequest`` (``enqueue.py``) and hands it over through
``dispatch.submit()``; backends settle each attempt's outcome through the retry seam
(``retry.settle()``) with the two hooks ``BaseBackend`` provides, ``record`` and ``requeue``.
``EnqueueRequest``, ``submit`` and ``submit_many`` are re-exported here for older imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from django.core.checks import CheckMessage

from ..dispatch import check_capabilities, submit, submit_many
from ..enqueue import EnqueueRequest
from ..exceptions import ResultNotAvailableError
from ..status import TaskHandle, TaskStatus

if TYPE_CHECKING:
    from ..execution import Outcome

__all__ = [
    "Backend",
    "BaseBackend",
    "EnqueueRequest",
    "check_capabilities",
    "submit",
    "submit_many",
]


@runtime_checkable
class Backend(Protocol):
    """What ``TASKS_BACKEND`` must be: something that accepts enqueue requests.

    Capability flags say which ``start()`` options the backend honours; ``submit()`` refuses
    the others with ``UnsupportedOptionError``, so nothing is silently dropped.
    """

    @property
    def supports_defer(self) -> bool:
        """``delay`` / ``eta`` are honoured."""
        ...

    @property
    def supports_priority(self) -> bool:
        """``priority`` orders runs."""
        ...

    @property
    def supports_key(self) -> bool:
        """``key`` deduplicates: a second start with the same key returns the first run."""
        ...

    @property
    def supports_results(self) -> bool:
        """Status and results can be read back (``TaskHandle.refresh()``)."""
        ...

    @property
    def supports_retries(self) -> bool:
        """Failed attempts are retried following the task's policy."""
        ...

    @property
    def enqueues_in_transaction(self) -> bool:
        """The enqueue is part of the caller's DB transaction, so it needs no on-commit hop."""
        ...

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Accept one task run; return its handle."""
        ...

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Accept many runs, in bulk where possible; one handle per request, in order."""
        ...

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """Return a fresh handle for ``run_id`` (only when ``supports_results``)."""
        ...

    def check(self) -> list[CheckMessage]:
        """Django system check messages about this backend's configuration."""
        ...


class BaseBackend:
    """Convenient base for backends: capability defaults and simple bulk enqueue."""

    supports_defer: ClassVar[bool] = False
    supports_priority: ClassVar[bool] = False
    supports_key: ClassVar[bool] = False
    supports_results: ClassVar[bool] = False
    supports_retries: ClassVar[bool] = False
    enqueues_in_transaction: ClassVar[bool] = False
    supports_cancel: ClassVar[bool] = False
    """Whether ``handle.cancel()`` cancels runs, running ones too (cooperatively)."""
    supports_progress: ClassVar[bool] = False
    """Whether ``report_progress()`` is stored on the run (``handle.progress``); the
    ``task_progress`` signal fires on every backend."""

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Accept one task run; return its handle."""
        raise NotImplementedError

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Accept many runs one after the other; override for a real bulk path."""
        return [self.enqueue(request) for request in requests]

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Keep the outcome of an attempt (retry seam hook; backends without results: no-op)."""

    def requeue(self, request: EnqueueRequest) -> None:
        """Send a run again as ``request.attempt``, due at ``request.run_after`` (retry seam
        hook; by default through ``enqueue()``)."""
        self.enqueue(request)

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """Backends without results cannot look runs up."""
        raise ResultNotAvailableError(f"{type(self).__name__} does not keep task results.")

    @property
    def keeps_nul_characters(self) -> bool:
        """Whether runs may hold NUL characters in params and keys (the HTTP API answers 422
        for them when not: ``DatabaseBackend`` on PostgreSQL)."""
        return True

    def run_params(self, run_id: str) -> Any:
        """The params ``run_id`` was started with, as JSON data; ``None`` when this backend
        does not keep them (the HTTP API then cannot tell a key's replay from a reuse)."""
        return None

    def check(self) -> list[CheckMessage]:
        """No configuration problems by default."""
        return []

    def handle_for(
        self, request: EnqueueRequest, status: TaskStatus | None = None
    ) -> TaskHandle[Any]:
        """A fresh handle for ``request`` (status from its ``run_after`` unless given)."""
        if status is None:
            status = TaskStatus.SCHEDULED if request.run_after else TaskStatus.READY
        return TaskHandle(id=request.run_id, name=request.task_name, status=status, backend=self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def __getattr__(name: str) -> Any:
    # Moved to compat (it imports nothing from backends, so it is loaded lazily from here).
    if name == "LegacyBackendAdapter":
        from ..compat import LegacyBackendAdapter

        return LegacyBackendAdapter
    if name == "_in_atomic_block":
        from ..compat import in_atomic_block

        return in_atomic_block
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
