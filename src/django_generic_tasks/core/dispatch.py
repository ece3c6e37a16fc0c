"""How ``start()`` hands runs to a backend: capability checks, the on-commit hop, the signal;
and how ``get_handle()`` finds a run again.

``Task.start()`` builds an ``EnqueueRequest`` and calls ``submit()``, which checks the request
against the backend's capability flags, waits for the surrounding transaction to commit when
asked to, then calls ``backend.enqueue()`` and sends ``task_enqueued``. ``get_handle()`` lives
here rather than beside ``TaskHandle``: it looks the configured backend up, and backends build
handles (``core.handles`` stays below ``conf``'s backend lookup).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ..exceptions import ResultNotAvailableError, RunNotFoundError, UnsupportedOptionError
from ..signals import task_enqueued
from ..support.compat import in_atomic_block
from .batching import current_batch
from .handles import TaskHandle
from .results import decode_result
from .running import services
from .status import TaskStatus

if TYPE_CHECKING:
    from ..backends.base import Backend
    from .enqueue import EnqueueRequest

__all__ = ["check_capabilities", "get_handle", "submit", "submit_many"]


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
    flow = request.flow
    if flow is not None:
        if flow.concurrency_limit is not None and not backend.concurrency_limits:
            raise UnsupportedOptionError(
                f"{name} cannot honour {request.task_name}.concurrency_limit: it would be "
                "ignored; use DatabaseBackend (or ThreadingBackend within one process)."
            )
        if flow.rate is not None and not backend.rate_limits:
            raise UnsupportedOptionError(
                f"{name} cannot honour {request.task_name}.rate_limit: it would be ignored; "
                "use DatabaseBackend (or ThreadingBackend within one process)."
            )
    if request.key is not None and not backend.supports_key:
        raise UnsupportedOptionError(
            f"{name} cannot deduplicate runs (start(key=...)); use DatabaseBackend or "
            "CloudTasksBackend."
        )


def submit(backend: Backend, request: EnqueueRequest, *, on_commit: bool = True) -> TaskHandle[Any]:
    """Hand ``request`` to ``backend``, after the current transaction commits if asked (to
    the open batch, which does the same, inside ``with tasks.batch():``)."""
    if current_batch.get() is not None:
        return _join_batch(backend, [request], on_commit)[0]
    tracing = services.producer_tracing
    if tracing is not None and tracing.maybe and request.trace_context is None and tracing.active():
        return tracing.submit(submit, backend, request, on_commit)
    if (
        request.run_after is not None
        or request.priority
        or request.key is not None
        or request.flow is not None
    ):
        check_capabilities(backend, request)  # only these options can be unsupported
    if on_commit and not backend.enqueues_in_transaction and in_atomic_block():
        from django.db import transaction

        handle: TaskHandle[Any] = TaskHandle(
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
) -> list[TaskHandle[Any]]:
    """Hand many requests to ``backend`` at once, after commit if asked."""
    if current_batch.get() is not None:
        return _join_batch(backend, requests, on_commit)
    tracing = services.producer_tracing
    if (
        tracing is not None
        and tracing.maybe
        and requests
        and requests[0].trace_context is None
        and tracing.active()
    ):
        return tracing.submit_many(submit_many, backend, requests, on_commit)
    for request in requests:
        check_capabilities(backend, request)
    if on_commit and not backend.enqueues_in_transaction and in_atomic_block():
        from django.db import transaction

        handles: list[TaskHandle[Any]] = [
            TaskHandle(id=r.run_id, name=r.task_name, status=TaskStatus.PENDING, backend=backend)
            for r in requests
        ]

        def enqueue_all() -> None:
            for handle, fresh in zip(handles, _enqueue_many(backend, requests), strict=True):
                handle.status, handle.result, handle.error = fresh.status, fresh.result, fresh.error

        transaction.on_commit(enqueue_all)
        return handles
    return _enqueue_many(backend, requests)


def _join_batch(
    backend: Backend, requests: Sequence[EnqueueRequest], on_commit: bool
) -> list[TaskHandle[Any]]:
    batch = current_batch.get()
    assert batch is not None
    for request in requests:
        check_capabilities(backend, request)
    handles = batch.join(backend, requests, on_commit)
    if task_enqueued.receivers:
        for request in requests:
            _announce(request)
    return handles


def _enqueue(backend: Backend, request: EnqueueRequest) -> TaskHandle[Any]:
    handle = backend.enqueue(request)
    if task_enqueued.receivers:
        _announce(request)
    return handle


def _enqueue_many(backend: Backend, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
    handles = backend.enqueue_many(requests)
    if task_enqueued.receivers:
        for request in requests:
            _announce(request)
    return handles


def _announce(request: EnqueueRequest) -> None:
    from .registry import registry

    sender = registry.get(request.task_name) if request.task_name in registry else None
    task_enqueued.send(sender=sender, request=request)


def _enqueue_into(backend: Backend, request: EnqueueRequest, handle: TaskHandle[Any]) -> None:
    fresh = _enqueue(backend, request)
    handle.status, handle.result, handle.error = fresh.status, fresh.result, fresh.error
    handle.attempts = fresh.attempts


def get_handle(run_id: str, *, backend: Backend | None = None) -> TaskHandle[Any]:
    """The handle of run ``run_id`` (Celery's ``AsyncResult(id)``), fresh from ``backend``
    (``TASKS_BACKEND`` unless given): ``refresh()``, ``wait()`` and ``cancel()`` work on it as
    on the handle ``start()`` returned, and its ``result`` is decoded to the task's result type.

    ``RunNotFoundError`` when the backend has no such run; ``ResultNotAvailableError`` when it
    keeps no runs to look up (``supports_results`` false). ``Task.handle(run_id)`` is the typed
    form.
    """
    from ..conf import get_backend

    source = backend or get_backend()
    if not source.supports_results:
        raise ResultNotAvailableError(
            f"{type(source).__name__} does not keep task runs; it cannot look up {run_id!r}."
        )
    try:
        handle = source.get_result(run_id)
    except RunNotFoundError:
        raise
    except KeyError:
        raise RunNotFoundError(f"There is no task run {run_id!r}.") from None
    if handle.backend is None:
        handle.backend = source
    handle.result = decode_result(handle.name, handle.result)
    return handle
