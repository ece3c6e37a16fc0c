"""``ImmediateBackend``: runs the task in the caller's thread as soon as it is started."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.enqueue import EnqueueRequest
from ..core.handles import TaskHandle
from ..exceptions import FlowDeferred, RetryAfter
from ..execution import Attempt, Outcome, execute
from ..execution.retry import settle
from ..execution.steps import IN_PROCESS, register_step_store
from ..workflows.memory import InProcessWorkflowOperations, MemoryWorkflows
from .base import BaseBackend

if TYPE_CHECKING:
    pass


class ImmediateBackend(InProcessWorkflowOperations, BaseBackend):
    """Runs each task at ``start()`` (after commit inside a transaction), in-process.

    The default backend. Retries follow the task's policy; by default the backoff wait is
    skipped because the caller is waiting (``sleep_between_retries=True`` waits it out).
    """

    supports_priority = True  # one run at a time: order is trivially respected
    supports_retries = True
    supports_workflows = True
    supports_continuations = True
    capability_notes: ClassVar[dict[str, str]] = {
        "supports_workflows": "in-process: the steps run inside `start()`"
    }
    crash_safe = None  # runs execute in the caller: nothing is left waiting
    concurrency_limits = "process"  # the caller waits for a slot
    rate_limits = "process"  # the caller waits for its turn

    def __init__(self, *, sleep_between_retries: bool = False) -> None:
        self.sleep_between_retries = sleep_between_retries
        self.workflows = MemoryWorkflows(self)
        register_step_store(self.name, IN_PROCESS)

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Run every attempt now and return a handle with the final status and result."""
        while True:
            try:
                outcome = execute(Attempt.of(request, self.name))
            except FlowDeferred as exc:  # a limit: the caller waits for its slot or turn
                exc.wait()
                continue
            if not outcome.decision.retry:
                status = outcome.status
                if request.workflow is not None:  # nothing kept here, but its workflow goes on
                    settle(self, request, outcome)
                break
            retry = settle(self, request, outcome)
            if retry is not None and asked_for(outcome):  # RetryAfter: waited for, always
                sleep_until(retry)
            if retry is None:
                status = outcome.run_status
                break
            request = retry
        handle = self.handle_for(request, status)
        handle.result, handle.error, handle.attempts = (
            outcome.result,
            outcome.error,
            request.attempt,
        )
        return handle

    def requeue(self, request: EnqueueRequest) -> None:
        """The next attempt runs in ``enqueue()``'s loop; wait for it first when configured."""
        if self.sleep_between_retries and request.run_after is not None:
            time.sleep(max(0.0, request.run_after.timestamp() - time.time()))


def asked_for(outcome: Outcome) -> bool:
    """Whether the task itself asked for the retry's time (``RetryAfter``): waited for even
    without ``sleep_between_retries``."""
    error = outcome.error
    return error is not None and error.type == RETRY_AFTER_TYPE


def sleep_until(request: EnqueueRequest) -> None:
    """Sleep until ``request`` is due."""
    if request.run_after is not None:
        time.sleep(max(0.0, request.run_after.timestamp() - time.time()))


RETRY_AFTER_TYPE = f"{RetryAfter.__module__}.{RetryAfter.__qualname__}"
