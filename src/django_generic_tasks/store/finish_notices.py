"""PostgreSQL ``LISTEN/NOTIFY`` for finished runs: what wakes ``handle.wait()`` without polling.

``wait()`` marks its run (``awaited_at``); when a marked run's status becomes final, whatever
statement does it, migration 0009's trigger sends ``NOTIFY django_generic_tasks_finished``
with the run's id, at commit, so a woken waiter always reads the final row. Runs nobody waits
for send nothing: the worker's hot path pays only the trigger's ``WHEN`` test.

Each process keeps one ``FinishListener`` per database alias, started by the first ``wait()``
and shared by all waiters of the process: one connection, not one per waiter. It stops (and
closes its connection) after a few seconds without waiters; ``stop_listeners()`` stops them at
once (a test run must, before its test database is dropped).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from .listen import close_listen_connection, open_listen_connection

CHANNEL = "django_generic_tasks_finished"
"""The channel of migration 0009's trigger."""
IDLE_SECONDS = 5.0
"""How long a listener without waiters keeps its connection before it stops."""
READY_TIMEOUT = 5.0
"""How long a first waiter waits for ``LISTEN`` to be in place before it falls back to
polling."""

logger = logging.getLogger("django_generic_tasks")


class FinishListener:
    """Listens for finish notices on its own connection and sets the events of the waiters of
    the runs they name (of every waiter for ``*`` and after a reconnect)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._idle_since = time.monotonic()
        self._stopping = False

    def subscribe(
        self, run_id: str, event: threading.Event | None = None
    ) -> threading.Event | None:
        """An event (``event`` when given) set when ``run_id`` may have finished, and the run
        marked as awaited (on the calling thread's connection); ``None`` when ``LISTEN`` could
        not be set up in time (the caller polls instead)."""
        if event is None:
            event = threading.Event()
        with self._lock:
            self._waiters.setdefault(run_id, set()).add(event)
            if self._thread is None or not self._thread.is_alive():
                self._ready.clear()
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._listen, name="tasks-finish-listen", daemon=True
                )
                self._thread.start()
            ready = self._ready
        if ready.wait(READY_TIMEOUT):  # listening before the mark: no notice can be missed
            from django.db import connections

            from . import for_connection

            for_connection(connections[self.database]).queue.mark_awaited(run_id)
            return event
        self.unsubscribe(run_id, event)
        return None

    def unsubscribe(self, run_id: str, event: threading.Event) -> None:
        """Stop setting ``event`` for ``run_id``."""
        with self._lock:
            events = self._waiters.get(run_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[run_id]
            if not self._waiters:
                self._idle_since = time.monotonic()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection (waiters left fall back to re-reading)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def waiting(self) -> int:
        """How many runs have waiters now."""
        with self._lock:
            return len(self._waiters)

    def _wake(self, run_ids: Sequence[str] | None) -> None:
        with self._lock:
            if run_ids is None:
                events = [e for found in self._waiters.values() for e in found]
            else:
                events = [e for run_id in run_ids for e in self._waiters.get(run_id, ())]
        for event in events:
            event.set()

    def _idle(self) -> bool:
        """Whether to stop: no waiters for ``IDLE_SECONDS`` (decided under the lock, so a new
        subscriber either sees this thread alive or starts another)."""
        with self._lock:
            if not self._stopping and (
                self._waiters or time.monotonic() - self._idle_since < IDLE_SECONDS
            ):
                return False
            self._thread = None
            return True

    def _listen(self) -> None:
        delay, reconnecting = 0.1, False
        while True:
            wrapper = None
            try:
                wrapper = open_listen_connection(self.database, CHANNEL)
                delay = 0.1
                if reconnecting:  # notices sent while the connection was down are lost
                    self._wake(None)
                self._ready.set()
                raw = wrapper.connection
                while not self._idle():
                    for notice in raw.notifies(timeout=1.0, stop_after=1):
                        self._wake((notice.payload,))
                return
            except Exception as exc:
                logger.warning(
                    "The LISTEN connection for finished runs failed (%s); retrying in %.1fs",
                    exc,
                    delay,
                )
                self._wake(None)  # waiters read their row again rather than miss a finish
                reconnecting = True
                if self._idle():
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                close_listen_connection(wrapper)


_listeners: dict[str, FinishListener] = {}
_listeners_lock = threading.Lock()


def listener_for(database: str) -> FinishListener:
    """This process's finish listener for the connection alias ``database``."""
    with _listeners_lock:
        listener = _listeners.get(database)
        if listener is None:
            listener = _listeners[database] = FinishListener(database)
        return listener


def stop_listeners() -> None:
    """Stop this process's finish listeners and close their connections."""
    with _listeners_lock:
        listeners = list(_listeners.values())
    for listener in listeners:
        listener.stop()
