"""``ImmediateBackend``: runs the task in the caller's thread as soon as it is started."""

from __future__ import annotations

import time

from ..execution import execute
from ..status import TaskHandle
from .base import BaseBackend, EnqueueRequest


class ImmediateBackend(BaseBackend):
    """Runs each task at ``start()`` (after commit inside a transaction), in-process.

    The default backend. Retries follow the task's policy; by default the backoff wait is
    skipped because the caller is waiting (``sleep_between_retries=True`` waits it out).
    """

    supports_priority = True  # one run at a time: order is trivially respected
    supports_retries = True

    def __init__(self, *, sleep_between_retries: bool = False) -> None:
        self.sleep_between_retries = sleep_between_retries

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        """Run every attempt now and return a handle with the final status and result."""
        while True:
            outcome = execute(
                request.task_name,
                request.params_json,
                run_id=request.run_id,
                attempt=request.attempt,
                max_attempts=request.max_attempts,
            )
            if not outcome.will_retry:
                break
            if self.sleep_between_retries and outcome.retry_at is not None:
                time.sleep(max(0.0, outcome.retry_at.timestamp() - time.time()))
            request = request.next_attempt(outcome.retry_at)
        handle = self.handle_for(request, outcome.status)
        handle.result, handle.error, handle.attempts = (
            outcome.result,
            outcome.error,
            request.attempt,
        )
        return handle
