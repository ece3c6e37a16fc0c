"""The run metrics, through the OpenTelemetry metrics API.

- ``django_generic_tasks.runs.finished`` (counter, ``{run}``): attempts that ended, by task,
  queue and outcome (``succeeded``, ``failed``, ``discarded``, ``retried``).
- ``django_generic_tasks.run.duration`` (histogram, ``s``): how long attempts ran, same attributes.
- ``django_generic_tasks.queue.wait`` (histogram, ``s``): from enqueue (or ``run_after``) to the
  attempt's start, by task and queue.
- ``django_generic_tasks.queue.depth`` (observable gauge, ``{run}``; database backend): unfinished
  runs by queue and state (``waiting``, ``scheduled``, ``running``).
- ``django_generic_tasks.queue.oldest_wait`` (observable gauge, ``s``; database backend): the
  oldest due run's wait, by queue.

Attributes: ``django_generic_tasks.task.name``, ``messaging.destination.name`` (the queue),
``django_generic_tasks.outcome``, ``django_generic_tasks.queue.state``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from ..core.status import TaskStatus

if TYPE_CHECKING:
    from ..execution.attempts import Outcome

__all__ = [
    "observe_database_queues",
    "outcome_name",
    "record_finished",
    "record_wait",
    "record_waited",
]

TASK = "django_generic_tasks.task.name"
QUEUE = "messaging.destination.name"
OUTCOME = "django_generic_tasks.outcome"
STATE = "django_generic_tasks.queue.state"

_meter = metrics.get_meter("django_generic_tasks")
_finished = _meter.create_counter(
    "django_generic_tasks.runs.finished", unit="{run}", description="Attempts that ended."
)
_duration = _meter.create_histogram(
    "django_generic_tasks.run.duration", unit="s", description="How long attempts ran."
)
_wait = _meter.create_histogram(
    "django_generic_tasks.queue.wait",
    unit="s",
    description="From enqueue (or run_after) to the attempt's start.",
)

_OUTCOMES = {
    TaskStatus.SUCCEEDED: "succeeded",
    TaskStatus.FAILED: "failed",
    TaskStatus.DISCARDED: "discarded",
}


def outcome_name(outcome: Outcome) -> str:
    """The ``outcome`` attribute of an attempt: succeeded, failed, discarded or retried."""
    if outcome.decision.retry:
        return "retried"
    return _OUTCOMES.get(outcome.status, outcome.status.value)


def record_finished(task: str, queue: str, outcome: str, seconds: float) -> None:
    """Count one ended attempt and record its duration."""
    attributes = {TASK: task, QUEUE: queue, OUTCOME: outcome}
    _finished.add(1, attributes)
    _duration.record(seconds, attributes)


def record_wait(task: str, queue: str, seconds: float) -> None:
    """Record how long a run waited in its queue before this attempt started."""
    _wait.record(seconds, {TASK: task, QUEUE: queue})


def record_waited(task: str, queue: str, since: datetime | str | None) -> None:
    """Record the wait of a run that became due at ``since`` (nothing when unknown)."""
    due = _aware(since)
    if due is not None:
        record_wait(task, queue, max((datetime.now(UTC) - due).total_seconds(), 0.0))


def _aware(value: datetime | str | None) -> datetime | None:
    """A due time as drivers return it (SQLite: text; MySQL: naive UTC) -> aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_gauges_lock = threading.Lock()
_gauges: set[tuple[str, int]] = set()


def observe_database_queues(database: str = "default", meter_provider: Any = None) -> bool:
    """Register the queue-depth and oldest-wait observable gauges for ``database`` with
    ``meter_provider`` (default: the global one), once per database and provider (the worker
    does it). Return whether they were registered by this call."""
    from .. import store

    meter = _meter if meter_provider is None else meter_provider.get_meter("django_generic_tasks")
    with _gauges_lock:
        if (database, id(meter)) in _gauges:
            return False
        _gauges.add((database, id(meter)))

    def depth(options: CallbackOptions) -> Iterable[Observation]:
        for (queue, state), count in _safely(store.queue_depth, database).items():
            yield Observation(count, {QUEUE: queue, STATE: state})

    def oldest(options: CallbackOptions) -> Iterable[Observation]:
        for queue, seconds in _safely(store.oldest_waiting_age, database).items():
            yield Observation(seconds, {QUEUE: queue})

    meter.create_observable_gauge(
        "django_generic_tasks.queue.depth",
        callbacks=[depth],
        unit="{run}",
        description="Unfinished runs by queue and state.",
    )
    meter.create_observable_gauge(
        "django_generic_tasks.queue.oldest_wait",
        callbacks=[oldest],
        unit="s",
        description="How long the oldest due run of each queue has waited.",
    )
    return True


def _safely(read: Any, database: str) -> dict[Any, Any]:
    """A gauge reading, or nothing when the database cannot answer (logged, not raised)."""
    from django.db import close_old_connections

    try:
        return dict(read(database))
    except Exception:
        import logging

        logging.getLogger("django_generic_tasks").warning(
            "Queue gauges could not be read", exc_info=True
        )
        return {}
    finally:
        close_old_connections()
