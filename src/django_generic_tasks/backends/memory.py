"""``InMemoryBackend``: keeps started runs in a list instead of running them (for tests)."""

from __future__ import annotations

import threading

from ..enqueue import EnqueueRequest
from ..execution import Outcome, execute
from ..retry import final, settle
from ..status import TaskHandle, TaskStatus
from .base import BaseBackend


class InMemoryBackend(BaseBackend):
    """Captures every started run without running it; ``run_all()`` runs them on demand.

    It accepts every ``start()`` option, so code under test can use them all. Used by
    ``django_generic_tasks.testing``.
    """

    supports_defer = True
    supports_priority = True
    supports_key = True
    supports_results = True
    supports_retries = True
    enqueues_in_transaction = True  # capture at start(), even inside a test's transaction

    def __init__(self) -> None:
        self.requests: list[EnqueueRequest] = []
        self.handles: dict[str, TaskHandle] = {}
        self._by_key: dict[str, TaskHandle] = {}
        self._lock = threading.Lock()

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        """Record the run; a repeated ``key`` returns the first run's handle."""
        with self._lock:
            if request.key is not None and request.key in self._by_key:
                existing = self._by_key[request.key]
                if not existing.status.is_finished:
                    return existing
            handle = self.handle_for(request)
            self.requests.append(request)
            self.handles[request.run_id] = handle
            if request.key is not None:
                self._by_key[request.key] = handle
            return handle

    def get_result(self, run_id: str) -> TaskHandle:
        """The handle of a captured run."""
        return self.handles[run_id]

    def pending(self) -> list[EnqueueRequest]:
        """Captured runs that have not run yet, in the order they were started."""
        with self._lock:
            return list(self.requests)

    def clear(self) -> None:
        """Forget every captured run."""
        with self._lock:
            self.requests.clear()
            self.handles.clear()
            self._by_key.clear()

    def run_all(self, *, retries: bool = True) -> list[Outcome]:
        """Run captured runs, and runs they start, until none is left; return the outcomes.

        Delays and ETAs are not waited for. Failed attempts are retried right away while the
        task's policy allows (``retries=False`` runs each attempt once).
        """
        outcomes: list[Outcome] = []
        while True:
            with self._lock:
                if not self.requests:
                    return outcomes
                request = self.requests.pop(0)
            self.handles[request.run_id].status = TaskStatus.RUNNING
            outcome = execute(
                request.task_name,
                request.params_json,
                run_id=request.run_id,
                attempt=request.attempt,
                max_attempts=request.max_attempts,
            )
            outcomes.append(outcome)
            settle(self, request, outcome if retries else final(outcome))

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Update the run's handle (retry seam hook)."""
        handle = self.handles[request.run_id]
        handle.attempts = request.attempt
        handle.status = outcome.status
        if outcome.status.is_finished:
            handle.result, handle.error = outcome.result, outcome.error

    def requeue(self, request: EnqueueRequest) -> None:
        """Put the run's next attempt first in line (retry seam hook)."""
        with self._lock:
            self.requests.insert(0, request)
