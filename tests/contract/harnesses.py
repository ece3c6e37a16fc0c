"""Harnesses: how the contract suite drives each backend. Add yours to ``HARNESSES``.

The contract suite (``test_contract.py``) runs every test once per harness. A harness wraps
one backend instance and knows how to make its runs happen:

- ``backend``: the backend under test (passed to ``start(backend=...)``; a fresh one per test).
- ``drain(timeout)``: return once every run started so far, and every run those runs cause
  (retries, runs due later), has finished; raise ``AssertionError`` after ``timeout`` seconds.
  A backend that runs in another process polls here (e.g. until its queue table is empty).
- ``calls(token)``: what the contract tasks recorded for ``token`` (the default reads the
  journal of ``tests.contract.tasks``, which works across processes).
- ``transactional``: ``start()`` inside an ``atomic()`` that rolls back never runs (every
  backend here, the in-memory test double included: it drops a start on rollback).

Which options a backend honours comes from its own capability flags (``supports_defer``,
``supports_key``...): where a flag says no, the suite asserts ``UnsupportedOptionError``.

To add a backend, write a context manager that builds the backend (and starts whatever it
needs: a worker thread, an emulator...), yields a ``BackendHarness`` and cleans up after, then
append a ``HarnessFactory`` to ``HARNESSES``::

    @contextmanager
    def database_harness() -> Iterator[BackendHarness]:
        from django_generic_tasks.backends import DatabaseBackend  # import inside: extras

        backend = DatabaseBackend()
        yield BackendHarness("database", backend, drain=run_worker_until_empty)

    HARNESSES.append(HarnessFactory("database", database_harness))

Runs executed in another process must import ``tests.contract.tasks`` there and inherit the
``TASKS_CONTRACT_JOURNAL`` environment variable. Every contract test has database access
(``django_db(transaction=True)``), so harnesses may use the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend, ThreadingBackend
from django_generic_tasks.backends.base import Backend
from tests.contract import tasks as contract_tasks


def _nothing_to_drain(timeout: float) -> None:
    """Backends that run at ``start()`` have nothing left to do."""


@dataclass
class BackendHarness:
    """One backend under test and the means to make its runs happen (see module docstring)."""

    name: str
    backend: Backend
    drain: Callable[[float], None] = _nothing_to_drain
    transactional: bool = True

    def calls(self, token: str) -> list[dict[str, Any]]:
        """What the contract tasks recorded for ``token``, oldest first."""
        return contract_tasks.entries(token)

    def ran(self, token: str) -> int:
        """How many runs of ``token`` completed their work."""
        return len(contract_tasks.entries(token, "ran"))

    def attempts(self, token: str) -> int:
        """How many attempts of ``token`` started (tasks that record attempts)."""
        return len(contract_tasks.entries(token, "attempt"))


@dataclass(frozen=True)
class HarnessFactory:
    """How to set a harness up and tear it down: ``make()`` is a context manager."""

    id: str
    make: Callable[[], AbstractContextManager[BackendHarness]]
    marks: tuple[Any, ...] = field(default=())


@contextmanager
def immediate_harness() -> Iterator[BackendHarness]:
    """``ImmediateBackend``: runs at ``start()``, so draining is a no-op."""
    yield BackendHarness("immediate", ImmediateBackend())


@contextmanager
def threading_harness() -> Iterator[BackendHarness]:
    """``ThreadingBackend`` with two workers; draining waits for runs due later too."""
    backend = ThreadingBackend(max_workers=2, drain_timeout=10)

    def drain(timeout: float) -> None:
        assert backend.wait_idle(timeout, include_scheduled=True), "runs still unfinished"

    try:
        yield BackendHarness("threading", backend, drain=drain)
    finally:
        backend.close(wait=True)


@contextmanager
def in_memory_harness() -> Iterator[BackendHarness]:
    """``InMemoryBackend`` (the test helpers' capture): ``run_all()`` is the drain.

    ``run_all()`` ignores delays, so the harness first waits until the captured runs are due.
    """
    backend = InMemoryBackend()

    def drain(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while backend.pending():
            due = [r.run_after for r in backend.pending() if r.run_after is not None]
            wait = max((d - datetime.now(UTC)).total_seconds() for d in due) if due else 0.0
            assert time.monotonic() + wait < deadline, "runs not due within the timeout"
            if wait > 0:
                time.sleep(wait)
            backend.run_all()

    yield BackendHarness("in-memory", backend, drain=drain)


HARNESSES: list[HarnessFactory] = [
    HarnessFactory("immediate", immediate_harness),
    HarnessFactory("threading", threading_harness),
    HarnessFactory("in-memory", in_memory_harness),
]
"""Every backend the contract suite runs against; other backends append theirs."""


def harness_params() -> list[Any]:
    """``HARNESSES`` as ``pytest.param``s (with each factory's marks)."""
    return [pytest.param(f, id=f.id, marks=f.marks) for f in HARNESSES]


@contextmanager
def database_harness() -> Iterator[BackendHarness]:
    """``DatabaseBackend`` with an in-process worker: draining runs it until no run is left
    unfinished (waiting for retries and delayed runs to fall due)."""
    from django_generic_tasks.backends import DatabaseBackend
    from django_generic_tasks.models import UNFINISHED, TaskRun
    from django_generic_tasks.worker import Worker, WorkerOptions

    def drain(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        unfinished = [s.value for s in UNFINISHED]
        while True:
            Worker(WorkerOptions(once=True, interval=0.02, concurrency=2)).run(
                install_signals=False
            )
            if not TaskRun.objects.filter(status__in=unfinished).exists():
                return
            assert time.monotonic() < deadline, "runs still unfinished"
            time.sleep(0.05)

    yield BackendHarness("database", DatabaseBackend(), drain=drain)


HARNESSES.append(HarnessFactory("database", database_harness))
from tests.contract import harnesses_bridges  # noqa: E402, F401
