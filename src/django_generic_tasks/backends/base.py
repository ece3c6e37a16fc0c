"""What every backend is: the ``Backend`` protocol, capability flags, and the hand-over path.

``Task.start()`` builds an ``EnqueueRequest`` and calls ``submit()``, which checks the request
against the backend's capability flags, waits for the surrounding transaction to commit when
asked to, then calls ``backend.enqueue()``.
"""

from __future__ import annotations

import logging
import threading
from asyncio import _get_running_loop
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from django.conf import settings
from django.core.checks import CheckMessage
from django.db import DEFAULT_DB_ALIAS, connections

from ..exceptions import InvalidOptionError, UnsupportedOptionError
from ..params import dump_params
from ..signals import task_enqueued
from ..status import TaskHandle, TaskStatus, new_run_id

if TYPE_CHECKING:
    from ..task import Task

logger = logging.getLogger("django_generic_tasks")


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~0.7 µs per start (hot path)
class EnqueueRequest:
    """Everything a backend needs to run one task later, in plain serialisable values.

    A value: treat it as read-only (``next_attempt()`` or ``dataclasses.replace()`` make a
    changed copy).
    """

    run_id: str
    task_name: str
    params_json: str
    queue: str
    priority: int
    run_after: datetime | None
    key: str | None
    max_attempts: int
    timeout: float | None
    attempt: int = 1

    @classmethod
    def for_task(
        cls,
        task: Task[Any],
        *,
        delay: timedelta | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        key: str | None = None,
    ) -> EnqueueRequest:
        """Build the request for ``task`` with ``start()``'s options, validating them."""
        run_after: datetime | None = None
        if delay is not None or eta is not None or priority is not None or queue is not None:
            run_after = _run_after(delay, eta)
            if priority is not None and not (isinstance(priority, int) and -100 <= priority <= 100):
                raise InvalidOptionError("start(priority=...) must be an integer from -100 to 100.")
            if queue is not None and (not isinstance(queue, str) or not queue):
                raise InvalidOptionError("start(queue=...) must be a non-empty string.")
        if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
            raise InvalidOptionError("start(key=...) must be a non-empty string of <= 255 chars.")
        task_class = type(task)
        return cls(  # positional: cheaper than keywords on the hot path, in field order
            new_run_id(),
            task_class.name,
            dump_params(task.params),
            queue or task_class.queue,
            task_class.priority if priority is None else priority,
            run_after,
            key,
            task_class.max_attempts,
            task_class.timeout,
        )

    def next_attempt(self, run_after: datetime | None) -> EnqueueRequest:
        """The same run, one attempt later, due at ``run_after``."""
        return replace(self, attempt=self.attempt + 1, run_after=run_after)


def _run_after(delay: timedelta | None, eta: datetime | None) -> datetime | None:
    """When a run with ``start(delay=..., eta=...)`` is due (``None``: now), validated."""
    if delay is not None and eta is not None:
        raise InvalidOptionError("Pass either delay or eta to start(), not both.")
    if delay is not None:
        if not isinstance(delay, timedelta):
            raise InvalidOptionError("start(delay=...) must be a datetime.timedelta.")
        if delay.total_seconds() < 0:
            raise InvalidOptionError("start(delay=...) must not be negative.")
        return datetime.now(UTC) + delay
    if eta is not None:
        if not isinstance(eta, datetime) or eta.tzinfo is None:
            raise InvalidOptionError(
                "start(eta=...) must be a timezone-aware datetime, "
                "such as django.utils.timezone.now() + timedelta(...)."
            )
        return eta
    return None


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

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        """Accept one task run; return its handle."""
        ...

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle]:
        """Accept many runs, in bulk where possible; one handle per request, in order."""
        ...

    def get_result(self, run_id: str) -> TaskHandle:
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

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        """Accept one task run; return its handle."""
        raise NotImplementedError

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle]:
        """Accept many runs one after the other; override for a real bulk path."""
        return [self.enqueue(request) for request in requests]

    def get_result(self, run_id: str) -> TaskHandle:
        """Backends without results cannot look runs up."""
        from ..exceptions import ResultNotAvailableError

        raise ResultNotAvailableError(f"{type(self).__name__} does not keep task results.")

    def check(self) -> list[CheckMessage]:
        """No configuration problems by default."""
        return []

    def handle_for(self, request: EnqueueRequest, status: TaskStatus | None = None) -> TaskHandle:
        """A fresh handle for ``request`` (status from its ``run_after`` unless given)."""
        if status is None:
            status = TaskStatus.SCHEDULED if request.run_after else TaskStatus.READY
        return TaskHandle(id=request.run_id, name=request.task_name, status=status, backend=self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class LegacyBackendAdapter(BaseBackend):
    """Wraps a backend of the seed's older releases, which had only ``run(task)``."""

    def __init__(self, legacy: Any) -> None:
        self.legacy = legacy

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        """Rebuild the task and pass it to the legacy backend's ``run(task)``."""
        from ..registry import get_task_class

        task_class = get_task_class(request.task_name)
        self.legacy.run(
            task_class(task_class.params_model.model_validate_json(request.params_json))
        )
        return self.handle_for(request)


def check_capabilities(backend: Backend, request: EnqueueRequest) -> None:
    """Raise ``UnsupportedOptionError`` when ``request`` asks what ``backend`` cannot do."""
    name = type(backend).__name__
    if request.run_after is not None and not backend.supports_defer:
        raise UnsupportedOptionError(
            f"{name} cannot run a task later (start(delay=...)/start(eta=...)); "
            "use a backend with supports_defer, such as ThreadingBackend or DatabaseBackend."
        )
    if request.priority != 0 and not backend.supports_priority:
        raise UnsupportedOptionError(
            f"{name} cannot order runs by priority (priority={request.priority}); "
            "leave priority at 0 or use a backend with supports_priority."
        )
    if request.key is not None and not backend.supports_key:
        raise UnsupportedOptionError(
            f"{name} cannot deduplicate runs (start(key=...)); use DatabaseBackend or "
            "CloudTasksBackend."
        )


def submit(backend: Backend, request: EnqueueRequest, *, on_commit: bool = True) -> TaskHandle:
    """Hand ``request`` to ``backend``, after the current transaction commits if asked."""
    if request.run_after is not None or request.priority or request.key is not None:
        check_capabilities(backend, request)  # only these options can be unsupported
    if on_commit and not backend.enqueues_in_transaction and _in_atomic_block():
        from django.db import transaction

        handle = TaskHandle(
            id=request.run_id, name=request.task_name, status=TaskStatus.PENDING, backend=backend
        )
        transaction.on_commit(partial(_enqueue_into, backend, request, handle))
        return handle
    handle = backend.enqueue(request)  # _enqueue(), inlined: the hot path of start()
    if task_enqueued.receivers:
        _announce(request)
    return handle


def submit_many(
    backend: Backend, requests: Sequence[EnqueueRequest], *, on_commit: bool = True
) -> list[TaskHandle]:
    """Hand many requests to ``backend`` at once, after commit if asked."""
    for request in requests:
        check_capabilities(backend, request)
    if on_commit and not backend.enqueues_in_transaction and _in_atomic_block():
        from django.db import transaction

        handles = [
            TaskHandle(id=r.run_id, name=r.task_name, status=TaskStatus.PENDING, backend=backend)
            for r in requests
        ]

        def enqueue_all() -> None:
            for handle, fresh in zip(handles, _enqueue_many(backend, requests), strict=True):
                handle.status, handle.result, handle.error = fresh.status, fresh.result, fresh.error

        transaction.on_commit(enqueue_all)
        return handles
    return _enqueue_many(backend, requests)


def _enqueue(backend: Backend, request: EnqueueRequest) -> TaskHandle:
    handle = backend.enqueue(request)
    if task_enqueued.receivers:
        _announce(request)
    return handle


def _enqueue_many(backend: Backend, requests: Sequence[EnqueueRequest]) -> list[TaskHandle]:
    handles = backend.enqueue_many(requests)
    for request in requests:
        _announce(request)
    return handles


def _announce(request: EnqueueRequest) -> None:
    if task_enqueued.receivers:
        from ..registry import registry

        sender = registry.get(request.task_name) if request.task_name in registry else None
        task_enqueued.send(sender=sender, request=request)


def _enqueue_into(backend: Backend, request: EnqueueRequest, handle: TaskHandle) -> None:
    fresh = _enqueue(backend, request)
    handle.status, handle.result, handle.error = fresh.status, fresh.result, fresh.error
    handle.attempts = fresh.attempts


_settings_configured = False  # once true, stays true: skip the lazy settings lookup


def _in_atomic_block() -> bool:
    global _settings_configured
    if not _settings_configured:
        if not settings.configured:
            return False
        _settings_configured = True
    # ``connections[alias]`` goes through asgiref's Local, which asks asyncio for a running
    # loop by catching a RuntimeError on every call. Outside an event loop that Local is a
    # plain threading.local: read it directly (no connection object yet: no atomic block).
    storage = getattr(connections._connections, "_storage", None)  # type: ignore[attr-defined]
    if type(storage) is threading.local and _get_running_loop() is None:
        connection = getattr(storage, DEFAULT_DB_ALIAS, None)
        return connection is not None and bool(connection.in_atomic_block)
    return bool(connections[DEFAULT_DB_ALIAS].in_atomic_block)
