"""The mutants of ``scripts/mutation_audit.py``: realistic bugs in the code that decides and
records how attempts end (execution, retry policy, settle, middleware, the worker, the run
store). Each names the tests that should catch it first; paths are relative to
``src/django_generic_tasks``."""

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
        (U + "test_lifecycle_hooks.py",),
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
        "                released = _store(self.options.database).release(self.id, unstarted)",
        "                released = len(unstarted)",
        (U + "test_database_worker.py",),
        "claimed runs not started at shutdown wait for their lease",
    ),
]
