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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    "AttemptMiddleware",
    "Chain",
    "Handler",
    "chain_for",
    "forget_chains",
    "poisoned_chain",
]

Handler = Callable[["Task[Any]", "Attempt"], "Outcome"]
"""The rest of the chain: ``next(task, attempt) -> Outcome``."""

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
    """What a chain is built for: a task class (``None``: an unknown task) and a backend name."""

    task_class: type[Task[Any]] | None
    backend: str


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


_lock = threading.Lock()
chains: dict[str, dict[type[Task[Any]], Handler]] = {}
"""Composed chains by backend name, then task class: read without a lock on the hot path."""


def forget_chains() -> None:
    """Build every chain again on next use (the middleware or what they depend on changed)."""
    with _lock:
        chains.clear()


def chain_for(task_class: type[Task[Any]], backend: str, terminal: Handler) -> Handler:
    """The chain of ``task_class`` on ``backend`` around ``terminal`` (built once, cached)."""
    with _lock:
        of_backend = chains.setdefault(backend, {})
        chain = of_backend.get(task_class)
        if chain is None:
            chain = _compose(_middleware_classes(), Chain(task_class, backend), terminal)
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


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKS_MIDDLEWARE":
        forget_chains()
