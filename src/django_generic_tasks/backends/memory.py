"""``InMemoryBackend``: keeps started runs in a list instead of running them (for tests)."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from ..core.enqueue import EnqueueRequest
from ..core.handles import TaskHandle
from ..core.status import TaskStatus
from ..exceptions import FlowDeferred
from ..execution import Attempt, Outcome, execute
from ..execution.retry import final, settle
from ..execution.steps import IN_PROCESS, register_step_store
from ..support.compat import in_atomic_block
from ..workflows.memory import InProcessWorkflowOperations, MemoryWorkflows
from .base import BaseBackend
from .immediate import asked_for, sleep_until

if TYPE_CHECKING:
    pass


class _Committed:
    """An on-commit callback that only notes that its transaction committed."""

    __slots__ = ("committed",)

    def __init__(self) -> None:
        self.committed = False

    def __call__(self) -> None:
        self.committed = True


class InMemoryBackend(InProcessWorkflowOperations, BaseBackend):
    """Captures every started run without running it; ``run_all()`` runs them on demand.

    It accepts every ``start()`` option, so code under test can use them all. Used by
    ``django_generic_tasks.testing``.

    Transactions are modelled like ``DatabaseBackend``, which writes the run in the caller's
    transaction: a start is captured at once, even inside ``atomic()``, and is dropped when
    the atomic block it was made in (or any block around it) rolls back, as if it had never
    been made; ``pending()`` and ``run_all()`` never return or run a dropped start. A start
    inside a transaction that has not ended yet -- such as the one Django's ``TestCase``
    wraps every test in, which never commits -- stays visible. ``start(on_commit=False)``
    does not change this (``DatabaseBackend`` writes in the transaction either way). Dropped
    starts are listed in ``rolled_back``. Only the ``default`` database's transactions count,
    as for ``start()``'s on-commit hand-over.
    """

    supports_defer = True
    supports_priority = True
    supports_key = True
    supports_results = True
    supports_retries = True
    supports_workflows = True
    supports_continuations = True
    enqueues_in_transaction = True  # capture at start(), even inside a test's transaction
    crash_safe = None  # a test double: runs are run by run_all(), in the caller
    concurrency_limits = "process"  # run_all() waits for a slot (another thread's run)
    rate_limits = "process"  # run_all() waits for the run's turn

    def __init__(self) -> None:
        self.requests: list[EnqueueRequest] = []
        self.starts: list[EnqueueRequest] = []
        """Every start accepted, run or not, in order (not retries, not rolled-back ones)."""
        self.handles: dict[str, TaskHandle[Any]] = {}
        self.rolled_back: list[EnqueueRequest] = []
        self._by_key: dict[str, TaskHandle[Any]] = {}
        self._params: dict[str, str] = {}  # run id -> params JSON, for run_params()
        self._lock = threading.Lock()
        # Starts made in a transaction that has not committed yet: run id -> (connection,
        # its on-commit marker). Django forgets the on-commit callbacks of a block that rolls
        # back, so a marker that neither ran nor is still registered means "rolled back".
        self._open: dict[str, tuple[Any, _Committed]] = {}
        self._checked: dict[Any, tuple[list[Any], int]] = {}
        self.workflows = MemoryWorkflows(self)
        register_step_store(self.name, IN_PROCESS)

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Record the run; a repeated ``key`` returns the first run's handle."""
        with self._lock:
            if request.key is not None and request.key in self._by_key:
                self._drop_rolled_back()
                existing = self._by_key.get(request.key)
                if existing is not None and not existing.status.is_finished:
                    return existing
            handle = self.handle_for(request)
            self.requests.append(request)
            self.starts.append(request)
            self.handles[request.run_id] = handle
            self._params[request.run_id] = request.params_json
            if request.key is not None:
                self._by_key[request.key] = handle
            if in_atomic_block():
                self._watch(request.run_id)
            return handle

    def run_params(self, run_id: str) -> Any:
        """The params ``run_id`` was started with, as JSON data (``None``: not started here)."""
        found = self._params.get(run_id)
        return None if found is None else json.loads(found)

    def _watch(self, run_id: str) -> None:
        from django.db import DEFAULT_DB_ALIAS, connections

        connection = connections[DEFAULT_DB_ALIAS]
        marker = _Committed()
        connection.on_commit(marker)
        self._open[run_id] = (connection, marker)

    def _drop_rolled_back(self) -> None:
        """Forget starts whose transaction rolled back (call with the lock held)."""
        if not self._open:
            return
        registered: dict[Any, set[int]] = {}
        dropped: set[str] = set()
        for run_id, (connection, marker) in list(self._open.items()):
            if marker.committed:
                del self._open[run_id]
                continue
            callbacks = connection.run_on_commit
            seen = self._checked.get(connection)
            # Django replaces the list when it removes callbacks (rollback, savepoint
            # rollback, commit) and only appends to it otherwise: the same list, no shorter,
            # means every marker checked last time is still registered.
            if seen is not None and seen[0] is callbacks and len(callbacks) >= seen[1]:
                continue
            if connection not in registered:
                registered[connection] = {id(item) for entry in callbacks for item in entry}
            if id(marker) not in registered[connection]:
                del self._open[run_id]
                dropped.add(run_id)
        for connection in registered:
            self._checked[connection] = (connection.run_on_commit, len(connection.run_on_commit))
        if dropped:
            self._forget(dropped)

    def _forget(self, run_ids: set[str]) -> None:
        kept = []
        for request in self.requests:
            if request.run_id in run_ids:
                if request.attempt == 1:
                    self.rolled_back.append(request)
            else:
                kept.append(request)
        self.requests[:] = kept
        self.starts[:] = [r for r in self.starts if r.run_id not in run_ids]
        for run_id in run_ids:
            self.handles.pop(run_id, None)
            self._params.pop(run_id, None)
        for key, handle in list(self._by_key.items()):
            if handle.id in run_ids:
                del self._by_key[key]

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """The handle of a captured run (``KeyError`` for one that was rolled back)."""
        with self._lock:
            self._drop_rolled_back()
        return self.handles[run_id]

    def pending(self) -> list[EnqueueRequest]:
        """Captured runs that have not run yet, in the order they were started (without
        those whose transaction rolled back)."""
        with self._lock:
            self._drop_rolled_back()
            return list(self.requests)

    def started(self) -> list[EnqueueRequest]:
        """Every captured start, run or still pending, in the order they were made (without
        those whose transaction rolled back)."""
        with self._lock:
            self._drop_rolled_back()
            return list(self.starts)

    def clear(self) -> None:
        """Forget every captured run."""
        with self._lock:
            self.requests.clear()
            self.starts.clear()
            self.handles.clear()
            self.rolled_back.clear()
            self._by_key.clear()
            self._params.clear()
            self._open.clear()
            self._checked.clear()

    def run_all(self, *, retries: bool = True) -> list[Outcome]:
        """Run captured runs, and runs they start, until none is left; return the outcomes.

        Delays and ETAs are not waited for; the times a task asks for (``RetryAfter``) and
        its limits (``concurrency_limit``, ``rate_limit``) are. Failed attempts are retried
        right away while the task's policy allows (``retries=False`` runs each attempt once).
        A start whose transaction rolled back is never run, including one rolled back by a
        run before it.
        """
        outcomes: list[Outcome] = []
        while True:
            with self._lock:
                self._drop_rolled_back()
                if not self.requests:
                    return outcomes
                request = self.requests.pop(0)
            self.handles[request.run_id].status = TaskStatus.RUNNING
            try:
                outcome = execute(Attempt.of(request, self.name))
            except FlowDeferred as exc:  # a limit: wait for the slot or the turn, then again
                self.handles[request.run_id].status = TaskStatus.READY
                exc.wait()
                self.requeue(request)
                continue
            outcomes.append(outcome)
            retry = settle(self, request, outcome if retries else final(outcome))
            if retry is not None and asked_for(outcome):  # RetryAfter: its time is waited for
                sleep_until(retry)

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        """Update the run's handle (retry seam hook)."""
        handle = self.handles.get(request.run_id)
        if handle is None:  # rolled back while it ran
            return
        handle.attempts = request.attempt
        handle.status = outcome.run_status
        if handle.status.is_finished:
            handle.result, handle.error = outcome.result, outcome.error

    def requeue(self, request: EnqueueRequest) -> None:
        """Put the run's next attempt first in line (retry seam hook)."""
        with self._lock:
            if request.run_id in self.handles:
                self.requests.insert(0, request)
