"""The mutants of ``scripts/mutation_audit.py``: realistic bugs in the code that decides and
records how attempts end (execution, retry policy, settle, middleware, the worker, the run
store). Each names the tests that should catch it first; paths are relative to
``src/django_generic_tasks``. Equivalent mutants (no behaviour can tell them apart, e.g. a
reaper's ``status = 'running'`` guard inside the transaction that selected running rows, or a
failed outcome's result, which is always ``None``) are left out."""

from __future__ import annotations

from typing import NamedTuple


class Mutant(NamedTuple):
    """One planted bug: ``old`` (exactly once in ``path``) becomes ``new``."""

    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


U = "tests/unit/"
CONTRACT = "tests/contract"
EXECUTION = (U + "test_execution.py", U + "test_retry_seam.py")

MUTANTS: list[Mutant] = [
    # -- the retry policy and the outcome --------------------------------------------------
    Mutant(
        "policy-off-by-one",
        "execution/attempts.py",
        "if attempt < max_attempts and isinstance(error, task_class.retry_on):",
        "if attempt <= max_attempts and isinstance(error, task_class.retry_on):",
        EXECUTION,
        "one attempt more than max_attempts",
    ),
    Mutant(
        "policy-ignores-retry-on",
        "execution/attempts.py",
        "if attempt < max_attempts and isinstance(error, task_class.retry_on):",
        "if attempt < max_attempts:",
        EXECUTION,
        "errors outside retry_on are retried",
    ),
    Mutant(
        "policy-no-backoff",
        "execution/attempts.py",
        "return Decision(True, datetime.now(UTC) + task_class.backoff(attempt))",
        "return Decision(True, datetime.now(UTC))",
        EXECUTION,
        "retries are due at once, ignoring the backoff",
    ),
    Mutant(
        "lost-worker-off-by-one",
        "execution/attempts.py",
        "return _AT_ONCE if attempt < max_attempts else FINAL",
        "return _AT_ONCE if attempt <= max_attempts else FINAL",
        (U + "test_database_worker.py", U + "test_store_pins.py", U + "test_retry_seam.py"),
        "a lost worker's run gets one reclaim too many",
    ),
    Mutant(
        "lost-limit-dropped",
        "execution/attempts.py",
        "limit = max_attempts + lost_limit",
        "limit = max_attempts",
        (U + "test_database_worker.py", U + "test_store_pins.py", U + "test_retry_seam.py"),
        "a lost worker burns the task's own attempts",
    ),
    Mutant(
        "cancel-is-failure",
        "execution/attempts.py",
        "if isinstance(exc, TaskCancelled):  # check_cancelled(): the run ends, never retried",
        "if False:",
        (U + "test_cancel.py", CONTRACT),
        "a cancelled attempt counts as a failure (and may retry)",
    ),
    Mutant(
        "discard-is-failure",
        "execution/attempts.py",
        "if isinstance(exc, task_class.discard_on) or (",
        "if False and isinstance(exc, task_class.discard_on) or (",
        EXECUTION,
        "discard_on errors fail (and may retry) instead of discarding",
    ),
    Mutant(
        "missing-models-fail-ignored",
        "execution/attempts.py",
        "type(exc) is ModelNotFoundError and not task_class.missing_models_fail",
        "type(exc) is ModelNotFoundError",
        (U + "test_model_refs.py", CONTRACT),
        "missing_models_fail = True is ignored",
    ),
    Mutant(
        "run-status-not-scheduled",
        "execution/attempts.py",
        "return TaskStatus.SCHEDULED if self.decision.retry else self.status",
        "return self.status",
        EXECUTION,
        "a run to be retried is recorded as failed",
    ),
    Mutant(
        "connection-lost-not-requeued",
        "execution/attempts.py",
        'if getattr(_thread, "requeue", False) and is_connection_lost(exc):',
        'if getattr(_thread, "requeue", False) and not is_connection_lost(exc):',
        (U + "test_connection_errors.py", U + "test_database_worker.py"),
        "a lost connection burns the attempt; other errors are put back",
    ),
    Mutant(
        "backoff-exponent-off-by-one",
        "core/task.py",
        "cls.backoff_base * cls.backoff_factor ** (attempt - 1)",
        "cls.backoff_base * cls.backoff_factor**attempt",
        (U + "test_task.py", U + "test_retry_seam.py"),
        "the first retry waits base * factor",
    ),
    Mutant(
        "backoff-max-ignored",
        "core/task.py",
        "seconds = min(cls.backoff_base * cls.backoff_factor ** (attempt - 1), cls.backoff_max)",
        "seconds = cls.backoff_base * cls.backoff_factor ** (attempt - 1)",
        (U + "test_task.py", U + "test_retry_seam.py"),
        "backoff_max does not cap the wait",
    ),
    # -- settle() --------------------------------------------------------------------------
    Mutant(
        "settle-requeue-failure-swallowed",
        "execution/retry.py",
        "        sink.record(request, final(outcome))\n        return None",
        "        return None",
        (U + "test_retry_seam.py", CONTRACT),
        "a retry that cannot be requeued leaves the run scheduled forever",
    ),
    Mutant(
        "settle-retry-without-record",
        "execution/retry.py",
        "    retry = request.next_attempt(decision.retry_at)\n    sink.record(request, outcome)\n",
        "    retry = request.next_attempt(decision.retry_at)\n",
        (U + "test_retry_seam.py", CONTRACT),
        "a retried attempt's failure is never recorded",
    ),
    Mutant(
        "defer-uses-an-attempt",
        "execution/retry.py",
        "later = replace(request, run_after=datetime.now(UTC) + REFUSED_RETRY_DELAY)",
        "later = replace(\n        request.next_attempt(None),"
        " run_after=datetime.now(UTC) + REFUSED_RETRY_DELAY\n    )",
        (U + "test_retry_seam.py", U + "test_abandoned_threads.py", U + "test_threading.py"),
        "a refused attempt uses up an attempt",
    ),
    # -- the middleware ----------------------------------------------------------------------
    Mutant(
        "hook-retry-is-failure",
        "middleware/hooks.py",
        "    elif outcome.decision.retry:\n",
        "    elif False:\n",
        (U + "test_lifecycle_hooks.py", U + "test_retry_seam.py", CONTRACT),
        "on_failure is called for an attempt that will be retried",
    ),
    Mutant(
        "hook-exception-escapes",
        "middleware/hooks.py",
        "    except Exception:\n        logger.exception(",
        "    except ArithmeticError:\n        logger.exception(",
        (U + "test_lifecycle_hooks.py",),
        "an exception in a hook escapes into the backend",
    ),
    Mutant(
        "result-not-validated",
        "middleware/results.py",
        "        if outcome.status is TaskStatus.SUCCEEDED:\n            return checked_outcome",
        "        if outcome.status is TaskStatus.FAILED:\n            return checked_outcome",
        (U + "test_typed_results.py",),
        "a successful attempt's result is not validated",
    ),
    Mutant(
        "invalid-result-succeeds",
        "middleware/results.py",
        "outcome.status, outcome.result, outcome.error = "
        "TaskStatus.FAILED, None, error_info(error)",
        "outcome.result, outcome.error = None, error_info(error)",
        (U + "test_typed_results.py",),
        "an invalid result leaves the run succeeded",
    ),
    Mutant(
        "timeout-guard-dropped",
        "middleware/timeout.py",
        "        if self.abandoned.count:\n            self.abandoned.refuse_when_over_capacity",
        "        if not self.abandoned.count:\n"
        "            self.abandoned.refuse_when_over_capacity",
        (U + "test_abandoned_threads.py",),
        "a timed run starts although too many timed-out threads still run",
    ),
    # -- the database worker ----------------------------------------------------------------
    Mutant(
        "worker-refusal-is-failure",
        "worker/runner.py",
        "            except CapacityExceededError as exc:  # refused before it ran: the same",
        "            except ArithmeticError as exc:  # refused before it ran: the same",
        (U + "test_abandoned_threads.py", U + "test_database_worker.py"),
        "a capacity refusal fails the run instead of putting it back",
    ),
    Mutant(
        "worker-pending-dropped-on-outage",
        "worker/runner.py",
        "                with self._lock:\n                    self._pending[:0] = pending\n",
        "                pass\n",
        (U + "test_database_worker.py", U + "test_connection_errors.py"),
        "outcomes of a batch whose write met an outage are lost",
    ),
    Mutant(
        "worker-give-back-dropped-on-outage",
        "worker/runner.py",
        "                    with self._lock:\n"
        "                        self._given_back[:0] = given_back[number:]\n",
        "                    pass\n",
        (
            U + "test_database_worker.py",
            U + "test_connection_errors.py",
            U + "test_abandoned_threads.py",
        ),
        "runs put back during an outage are forgotten",
    ),
    Mutant(
        "worker-unstored-outcome-lost",
        "worker/runner.py",
        "            runs.finish(self.id, [Finished(item.run, failure, item.at)])",
        "            pass",
        (U + "test_database_worker.py",),
        "a run whose outcome cannot be stored stays running",
    ),
    Mutant(
        "worker-unstarted-not-released",
        "worker/runner.py",
        "                released = _queue(self.options.database).release(self.id, unstarted)",
        "                released = len(unstarted)",
        (U + "test_database_worker.py",),
        "claimed runs not started at shutdown wait for their lease",
    ),
    # -- the run store (SQLite's statements and the ones every dialect shares) --------------
    Mutant(
        "finish-any-attempt",
        "store/sql/sqlite.py",
        ' WHERE id = %s AND attempt = %s AND status = \'running\' AND worker_id = %s\n"""\n"""One',
        ' WHERE id = %s AND attempt >= %s AND status = \'running\' AND worker_id = %s\n"""\n"""One',
        (U + "test_store_pins.py", U + "test_database_worker.py"),
        "a stale attempt's outcome overwrites the new attempt",
    ),
    Mutant(
        "finish-any-worker",
        "store/sql/sqlite.py",
        ' WHERE id = %s AND attempt = %s AND status = \'running\' AND worker_id = %s\n"""\n"""One',
        " WHERE id = %s AND attempt = %s AND status = 'running' AND (worker_id = %s OR 1 = 1)\n"
        '"""\n"""One',
        (U + "test_store_pins.py", U + "test_database_worker.py"),
        "an old worker finishes a run another worker holds",
    ),
    Mutant(
        "finish-cancel-ignored",
        "store/sql/sqlite.py",
        "   SET status = CASE WHEN %s IS NULL AND cancel_requested_at IS NOT NULL",
        "   SET status = CASE WHEN %s IS NULL AND cancel_requested_at IS NULL",
        (U + "test_pending_cancel.py",),
        "a retry of a run whose cancel was requested is claimed again",
    ),
    Mutant(
        "history-keeps-eleven",
        "store/sql/sqlite.py",
        "json_insert(CASE WHEN json_array_length(COALESCE(history, '[]')) >= 10\n"
        "                                       THEN",
        "json_insert(CASE WHEN json_array_length(COALESCE(history, '[]')) > 10\n"
        "                                       THEN",
        (U + "test_run_history.py",),
        "the history keeps 11 attempts, not 10",
    ),
    Mutant(
        "claim-not-yet-due",
        "store/sql/sqlite.py",
        "WHERE status IN ('scheduled', 'ready') AND run_after <= %s{queues}",
        "WHERE status IN ('scheduled', 'ready') AND (run_after <= %s OR 1 = 1){queues}",
        (U + "test_database_worker.py", U + "test_database_backend.py"),
        "runs are claimed before they are due",
    ),
    Mutant(
        "claim-skips-scheduled",
        "store/sql/sqlite.py",
        "WHERE status IN ('scheduled', 'ready') AND run_after <= %s{queues}",
        "WHERE status IN ('ready') AND run_after <= %s{queues}",
        (U + "test_database_worker.py", U + "test_database_backend.py"),
        "scheduled runs (retries, delays) are never claimed",
    ),
    Mutant(
        "claim-priority-reversed",
        "store/sql/sqlite.py",
        "ORDER BY priority DESC, run_after LIMIT %s)",
        "ORDER BY priority ASC, run_after LIMIT %s)",
        (U + "test_database_worker.py",),
        "low priority runs are claimed first",
    ),
    Mutant(
        "claim-no-attempt-count",
        "store/sql/sqlite.py",
        "   SET status = 'running', attempt = attempt + 1, worker_id = %s, started_at = %s,",
        "   SET status = 'running', attempt = attempt, worker_id = %s, started_at = %s,",
        (U + "test_database_worker.py",),
        "a claim does not count the attempt",
    ),
    Mutant(
        "postpone-burns-attempt",
        "store/sql/common.py",
        "   SET status = CASE WHEN cancel_requested_at IS NULL THEN 'scheduled' ELSE 'cancelled' "
        "END,\n       attempt = attempt - 1,",
        "   SET status = CASE WHEN cancel_requested_at IS NULL THEN 'scheduled' ELSE 'cancelled' "
        "END,\n       attempt = attempt,",
        (U + "test_abandoned_threads.py", U + "test_pending_cancel.py"),
        "a postponed run loses an attempt",
    ),
    Mutant(
        "postpone-any-worker",
        "store/sql/common.py",
        "       lease_expires_at = NULL\n WHERE id = %s AND status = 'running' AND worker_id = %s",
        "       lease_expires_at = NULL\n WHERE id = %s AND status = 'running' AND "
        "(worker_id = %s OR 1 = 1)",
        (
            U + "test_database_worker.py",
            U + "test_abandoned_threads.py",
            U + "test_pending_cancel.py",
        ),
        "a worker puts back a run another worker has claimed since",
    ),
    Mutant(
        "release-burns-attempt",
        "store/sql/common.py",
        "   SET status = CASE WHEN cancel_requested_at IS NULL THEN 'ready' ELSE 'cancelled' "
        "END,\n       attempt = attempt - 1,",
        "   SET status = CASE WHEN cancel_requested_at IS NULL THEN 'ready' ELSE 'cancelled' "
        "END,\n       attempt = attempt,",
        (U + "test_database_worker.py", U + "test_pending_cancel.py"),
        "a released run loses an attempt",
    ),
    Mutant(
        "extend-every-lease",
        "store/sql/common.py",
        "UPDATE django_generic_tasks_taskrun SET lease_expires_at = %s\n"
        " WHERE status = 'running' AND worker_id = %s",
        "UPDATE django_generic_tasks_taskrun SET lease_expires_at = %s\n"
        " WHERE status = 'running' AND (worker_id = %s OR 1 = 1)",
        (U + "test_database_worker.py", U + "test_store_pins.py", U + "test_heartbeat_pins.py"),
        "a heartbeat keeps every worker's runs alive, the dead ones' too",
    ),
    Mutant(
        "cancel-requested-inverted",
        "store/sql/common.py",
        " WHERE status = 'running' AND worker_id = %s AND cancel_requested_at IS NOT NULL",
        " WHERE status = 'running' AND worker_id = %s AND cancel_requested_at IS NULL",
        (U + "test_heartbeat_pins.py", U + "test_pending_cancel.py"),
        "the heartbeat cancels the runs nobody cancelled",
    ),
    Mutant(
        "reclaim-live-leases",
        "store/sql/common.py",
        " WHERE status = 'running' AND lease_expires_at < %s",
        " WHERE status = 'running' AND lease_expires_at > %s",
        (U + "test_database_worker.py",),
        "live leases are reclaimed, expired ones kept",
    ),
    Mutant(
        "last-failures-without-discards",
        "store/sql/common.py",
        "outcome IN ('failed', 'discarded')",
        "outcome IN ('failed')",
        (U + "test_observe_store.py", U + "test_dashboard.py"),
        "discarded runs are missing from the last failures",
    ),
    Mutant(
        "outcome-retry-finished",
        "store/rows.py",
        "        finished_at=None if retry else item.at,",
        "        finished_at=item.at,",
        (U + "test_database_worker.py", U + "test_store_pins.py", U + "test_run_history.py"),
        "a run waiting for its retry has finished_at set",
    ),
    Mutant(
        "finish-empty-batch-skips-rollups",
        "store/queue.py",
        "        elif added:\n            self.observations.write_rollups(added)",
        "        elif False:\n            self.observations.write_rollups(added)",
        (U + "test_store_pins.py", U + "test_observe_store.py"),
        "rollups handed over with an empty batch are lost",
    ),
    Mutant(
        "reclaim-cancel-is-retry",
        "store/queue.py",
        "                if r[7] is None:",
        "                if True:",
        (U + "test_pending_cancel.py", U + "test_database_worker.py"),
        "a lost run whose cancel was requested is run again",
    ),
    Mutant(
        "retry-resets-budget",
        "store/operations.py",
        '                budget = {"max_attempts": max(run.max_attempts, run.attempt + 1)}',
        '                budget = {"max_attempts": run.attempt + 1}',
        (U + "test_database_admin.py", U + "test_store_pins.py"),
        "a plain retry of a run discarded early shrinks its budget",
    ),
    Mutant(
        "cancel-waiting-no-finished-at",
        "store/operations.py",
        "            status=TaskStatus.CANCELLED.value, finished_at=now, lease_expires_at=None",
        "            status=TaskStatus.CANCELLED.value, lease_expires_at=None",
        (U + "test_cancel.py", U + "test_store_pins.py", U + "test_database_admin.py"),
        "a cancelled waiting run has no finished_at",
    ),
    Mutant(
        "prune-unfinished",
        "store/operations.py",
        "runs = self.runs.filter(status__in=[s.value for s in statuses], finished_at__lt=before)",
        "runs = self.runs.filter(finished_at__lt=before)",
        (U + "test_database_worker.py",),
        "prune deletes runs that have not finished",
    ),
]
