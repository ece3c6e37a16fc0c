"""The attempt pipeline: middleware around every attempt of every task, on every backend.

``execution.execute()`` looks the task up, validates its params, then calls the task's chain:
the middleware below, outermost first, around the call of ``run()``. Each concern is one class
in its own module that owns its task options; a middleware that does not apply to a task class
(no timeout, no model refs, OpenTelemetry not configured...) raises Django's
``MiddlewareNotUsed`` when the chain is built and costs nothing per attempt. A chain is built
once per task class and backend name, and rebuilt when ``TASKS_MIDDLEWARE`` changes, a progress
sink is registered or OpenTelemetry is configured late (``forget_chains()``).

A middleware is a class, in the spirit of Django's ``MIDDLEWARE``::

    class MyMiddleware(AttemptMiddleware):
        def __call__(self, task, attempt):
            ...                                  # before the attempt
            outcome = self.next(task, attempt)   # the rest of the chain, then run()
            ...                                  # after it: see or replace the outcome
            return outcome

``__init__(next, chain)`` is called once per chain (``chain.task_class``, ``chain.backend``);
``__call__(task, attempt)`` once per attempt (``task`` is the task with its validated params
and ``self.context``; ``attempt`` the ``Attempt`` the backend sent) and returns an ``Outcome``.
To skip the attempt ("not now"), raise ``CapacityExceededError``: no attempt is used up and
every backend tries the same attempt again a little later (the HTTP endpoint answers 503).

Attempts of ``async def run()`` tasks that a backend awaits on an event loop (the database
worker's ``--async-concurrency``) go through an async chain of the same middleware: each
layer's ``async def __acall__(task, attempt)`` (``self.next`` is then awaited), in the spirit
of Django's ``MiddlewareMixin.__acall__``. The built-in ones have both paths; their sync steps
around ``await self.next(...)`` do only quick work, and database work (model refs, progress,
sync hooks and signal receivers) goes through ``sync_to_async``. A middleware that overrides
``__call__`` but not ``__acall__`` keeps that task's attempts on the thread pool (logged once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from ..conf import get_settings

if TYPE_CHECKING:
    from ..core.task import Task
    from ..execution.attempts import Attempt, Outcome

__all__ = [
    "DEFAULT_INNER",
    "DEFAULT_OUTER",
    "AsyncHandler",
    "AttemptMiddleware",
    "Chain",
    "Handler",
    "async_chain_for",
    "chain_for",
    "forget_chains",
    "poisoned_chain",
]

Handler = Callable[["Task[Any]", "Attempt"], "Outcome"]
"""The rest of the chain: ``next(task, attempt) -> Outcome``."""

AsyncHandler = Callable[["Task[Any]", "Attempt"], Awaitable["Outcome"]]
"""The rest of an async chain: ``await next(task, attempt) -> Outcome``."""

logger = logging.getLogger("django_generic_tasks")

_PACKAGE = __name__

DEFAULT_OUTER = (
    f"{_PACKAGE}.limits.FlowLimitsMiddleware",
    f"{_PACKAGE}.tracing.TracingMiddleware",
    f"{_PACKAGE}.metrics.MetricsMiddleware",
    f"{_PACKAGE}.cancellation.CancellationMiddleware",
    f"{_PACKAGE}.progress.ProgressMiddleware",
    f"{_PACKAGE}.timeout.TimeoutMiddleware",
)
"""Built-in middleware outside ``TASKS_MIDDLEWARE``, outermost first."""

DEFAULT_INNER = (
    f"{_PACKAGE}.signals.SignalsMiddleware",
    f"{_PACKAGE}.hooks.HooksMiddleware",
    f"{_PACKAGE}.modelrefs.ModelRefsMiddleware",
    f"{_PACKAGE}.results.ResultValidationMiddleware",
)
"""Built-in middleware inside ``TASKS_MIDDLEWARE``, outermost first; then ``run()``."""


@dataclass(frozen=True, slots=True)
class Chain:
    """What a chain is built for: a task class (``None``: an unknown task), a backend name,
    and whether it is the async chain (``next`` is then an ``AsyncHandler``)."""

    task_class: type[Task[Any]] | None
    backend: str
    is_async: bool = False


class AttemptMiddleware:
    """Base class of attempt middleware: passes every attempt on unchanged.

    Subclasses override ``__call__`` (and ``__init__``, calling ``super().__init__``; raise
    ``MiddlewareNotUsed`` there to stay out of a chain). ``poisoned = True`` also puts the
    middleware around attempts that cannot run (unknown task, invalid params), with
    ``task`` ``None`` (the built-in tracing, metrics and signals do).
    """

    poisoned: ClassVar[bool] = False

    def __init__(self, next: Handler, chain: Chain) -> None:
        self.next = next
        self.chain = chain

    def __call__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Run the attempt through the rest of the chain."""
        return self.next(task, attempt)

    async def __acall__(self, task: Task[Any], attempt: Attempt) -> Outcome:
        """Run the attempt through the rest of an async chain (``self.next`` is awaited)."""
        outcome: Outcome = await self.next(task, attempt)  # type: ignore[misc]  # async chain
        return outcome


_lock = threading.Lock()
chains: dict[str, dict[type[Task[Any]], Handler]] = {}
"""Composed chains by backend name, then task class: read without a lock on the hot path."""
async_chains: dict[str, dict[type[Task[Any]], AsyncHandler | None]] = {}
"""Composed async chains the same way (``None``: a middleware has no async path)."""


def forget_chains() -> None:
    """Build every chain again on next use (the middleware or what they depend on changed)."""
    with _lock:
        chains.clear()
        async_chains.clear()


def chain_for(task_class: type[Task[Any]], backend: str, terminal: Handler) -> Handler:
    """The chain of ``task_class`` on ``backend`` around ``terminal`` (built once, cached)."""
    with _lock:
        of_backend = chains.setdefault(backend, {})
        chain = of_backend.get(task_class)
        if chain is None:
            chain = _compose(_middleware_classes(), Chain(task_class, backend), terminal)
            of_backend[task_class] = chain
    return chain


def async_chain_for(
    task_class: type[Task[Any]], backend: str, terminal: AsyncHandler | None
) -> AsyncHandler | None:
    """The async chain of ``task_class`` on ``backend`` around ``terminal`` (built once,
    cached); ``None`` when one of its middleware has only a sync path, or when ``terminal``
    is ``None`` (the task is not async: remembered as such)."""
    with _lock:
        of_backend = async_chains.setdefault(backend, {})
        if task_class in of_backend:
            return of_backend[task_class]
        chain = None
        if terminal is not None:
            classes = _middleware_classes()
            chain = _compose_async(classes, Chain(task_class, backend, True), terminal)
        of_backend[task_class] = chain
    return chain


def poisoned_chain(task_class: type[Task[Any]] | None, backend: str, terminal: Handler) -> Handler:
    """The chain around an attempt that cannot run: only ``poisoned`` middleware (not cached:
    the terminal returns that attempt's outcome)."""
    classes = [cls for cls in _middleware_classes() if getattr(cls, "poisoned", False)]
    return _compose(classes, Chain(task_class, backend), terminal)


def _middleware_classes() -> list[Any]:
    user = get_settings().middleware  # validated: a list of strings
    classes = []
    for path in (*DEFAULT_OUTER, *user, *DEFAULT_INNER):
        try:
            classes.append(import_string(path))
        except ImportError as exc:
            raise ImproperlyConfigured(f"TASKS_MIDDLEWARE: cannot import {path!r}: {exc}") from exc
    return classes


def _compose(classes: list[Any], chain: Chain, terminal: Handler) -> Handler:
    handler = terminal
    for cls in reversed(classes):
        try:
            # The bound method, not the instance: calling an instance goes through its type's
            # __call__ slot, about twice the cost of a bound method, once per layer per attempt.
            handler = cls(handler, chain).__call__
        except MiddlewareNotUsed:
            continue
    return handler


def _compose_async(classes: list[Any], chain: Chain, terminal: AsyncHandler) -> AsyncHandler | None:
    handler = terminal
    for cls in reversed(classes):
        try:
            middleware = cls(handler, chain)
        except MiddlewareNotUsed:
            continue
        if not _has_async_path(cls):
            name = chain.task_class.name if chain.task_class is not None else "?"
            logger.info(
                "Task %s: its attempts run on threads, not on the event loop: middleware %s.%s "
                "has no async path (define async def __acall__).",
                name,
                cls.__module__,
                cls.__qualname__,
            )
            return None
        handler = middleware.__acall__
    return handler


def _has_async_path(cls: type[Any]) -> bool:
    """Whether ``cls`` can sit in an async chain: it defines ``__acall__`` itself or below
    the class that last defines ``__call__`` (a sync-only override hides the base's)."""
    for klass in cls.__mro__:
        if "__acall__" in vars(klass) or "__call__" in vars(klass):
            return "__acall__" in vars(klass)
    return False


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKS_MIDDLEWARE":
        forget_chains()
