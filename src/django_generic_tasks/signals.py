"""Signals sent around every task run.

- ``task_enqueued(sender=TaskClass, request=EnqueueRequest)``: a backend accepted a task.
- ``task_started(sender=TaskClass, task=Task, run_id=str, attempt=int)``: a run is about to begin.
- ``task_finished(sender=TaskClass, task=Task | None, outcome=Outcome)``: a run ended, whatever
  the outcome (success, failure that will be retried, final failure, discard).
- ``task_progress(sender=TaskClass, task=Task, run_id=str, progress=Progress)``: ``run()`` called
  ``self.report_progress()`` (every report, on every backend, unthrottled; ``DatabaseBackend``
  also stores it on the run).
"""

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

_receivers_changed: list[Callable[[], None]] = []


def on_receivers_changed(callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever a receiver of ``task_started`` or ``task_finished`` is
    connected or disconnected (the attempt pipeline leaves its signals step out while nobody
    listens, and builds its chains again then)."""
    _receivers_changed.append(callback)


class _WatchedSignal(Signal):
    """A ``Signal`` that tells ``on_receivers_changed()`` callbacks about (dis)connections."""

    def connect(self, *args: Any, **kwargs: Any) -> None:
        super().connect(*args, **kwargs)
        for callback in _receivers_changed:
            callback()

    def disconnect(self, *args: Any, **kwargs: Any) -> bool:
        disconnected = super().disconnect(*args, **kwargs)
        for callback in _receivers_changed:
            callback()
        return disconnected


task_enqueued = Signal()
task_started = _WatchedSignal()
task_finished = _WatchedSignal()
task_progress = Signal()
schedule_fired = Signal()
"""``schedule_fired(sender=None, schedule_id=str, slot_at=datetime, run_id=str, entry=...)``: a
scheduler claimed a slot of a periodic task and handed its run to the backend."""
