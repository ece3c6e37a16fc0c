"""What a running task asks of the layers above the task model, answered by them.

``Task.report_progress()`` hands its report on, ``Task.cancel_requested`` asks whether the run
was asked to stop, ``Task.step()`` opens a step that resumes, and ``start()`` may be traced.
The task model cannot import the execution layer or OpenTelemetry support (they sit above
it), so the app installs their answers here when it is ready (``apps.py``), the way Django
connects signal receivers in ``ready()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..backends.base import Backend
    from .enqueue import EnqueueRequest
    from .handles import TaskHandle

__all__ = ["ProducerTracing", "RunServices", "install", "services"]


class ProducerTracing(Protocol):
    """Traces ``start()``: a PRODUCER span around each hand-over, its context carried by the run."""

    maybe: bool
    """False once tracing is known to be off (then ``start()`` pays this one read)."""

    def active(self) -> bool:
        """Whether spans are recorded now."""

    def submit(
        self,
        submit: Callable[..., TaskHandle[Any]],
        backend: Backend,
        request: EnqueueRequest,
        on_commit: bool,
    ) -> TaskHandle[Any]:
        """``submit(backend, request, on_commit=on_commit)`` inside a span."""

    def submit_many(
        self,
        submit_many: Callable[..., list[TaskHandle[Any]]],
        backend: Backend,
        requests: Sequence[EnqueueRequest],
        on_commit: bool,
    ) -> list[TaskHandle[Any]]:
        """``submit_many(backend, requests, on_commit=on_commit)``, one span per run."""


def _not_ready(task: Any, done: Any, total: Any, message: Any) -> Any:
    raise ConfigurationError(
        "Progress can be reported once django_generic_tasks is in INSTALLED_APPS and Django's "
        "apps are ready."
    )


def _no_steps(task: Any, name: str) -> Any:
    raise ConfigurationError(
        "Steps can be used once django_generic_tasks is in INSTALLED_APPS and Django's apps are "
        "ready."
    )


def _never_requested(run_id: str) -> bool:
    return False


class RunServices:
    """The installed answers (one instance, ``services``)."""

    def __init__(self) -> None:
        self.report_progress: Callable[[Any, Any, Any, Any], Any] = _not_ready
        """``(task, done, total, message)``: validate, fire ``task_progress``, store."""
        self.cancel_requested: Callable[[str], bool] = _never_requested
        """``(run_id)``: whether the run was asked to stop (nothing can ask before it is set)."""
        self.step: Callable[[Any, str], Any] = _no_steps
        """``(task, name)``: the run's step ``name`` (``execution.steps``)."""
        self.producer_tracing: ProducerTracing | None = None
        """Traces ``start()`` when OpenTelemetry support is installed."""


services = RunServices()


def install(
    *,
    report_progress: Callable[[Any, Any, Any, Any], Any],
    cancel_requested: Callable[[str], bool],
    step: Callable[[Any, str], Any],
    producer_tracing: ProducerTracing | None,
) -> None:
    """Install the answers (the app does, in ``ready()``)."""
    services.report_progress = report_progress
    services.cancel_requested = cancel_requested
    services.step = step
    services.producer_tracing = producer_tracing
