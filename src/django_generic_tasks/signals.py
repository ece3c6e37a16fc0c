"""Signals sent around every task run.

- ``task_enqueued(sender=TaskClass, request=EnqueueRequest)``: a backend accepted a task.
- ``task_started(sender=TaskClass, task=Task, run_id=str, attempt=int)``: a run is about to begin.
- ``task_finished(sender=TaskClass, task=Task | None, outcome=Outcome)``: a run ended, whatever
  the outcome (success, failure that will be retried, final failure, discard).
- ``task_progress(sender=TaskClass, task=Task, run_id=str, progress=Progress)``: ``run()`` called
  ``self.report_progress()`` (every report, on every backend, unthrottled; ``DatabaseBackend``
  also stores it on the run).
"""

from django.dispatch import Signal

task_enqueued = Signal()
task_started = Signal()
task_finished = Signal()
task_progress = Signal()
schedule_fired = Signal()
"""``schedule_fired(sender=None, schedule_id=str, slot_at=datetime, run_id=str, entry=...)``: a
scheduler claimed a slot of a periodic task and handed its run to the backend."""
