"""PostgreSQL ``LISTEN/NOTIFY``: wake idle workers as soon as a run is inserted.

A trigger (migration 0002) sends ``NOTIFY django_generic_tasks`` for every insert statement;
``notify_workers()`` sends it for other changes (retry, run now). Other databases poll.
"""

from __future__ import annotations

import logging
import threading

from ..execution.cancellation import request as request_cancel
from ..store.listen import CANCEL_CHANNEL, close_listen_connection, open_listen_connection
from ..store.listen import WORKERS_CHANNEL as CHANNEL

logger = logging.getLogger("django_generic_tasks.worker")


def notify_workers(database: str = "default") -> None:
    """Wake the workers listening on ``database`` (no-op where there is no LISTEN/NOTIFY)."""
    from django.db import connections

    connection = connections[database]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


class Listener(threading.Thread):
    """Listens on its own connection and sets ``wake`` on each notification; a cancel
    request for a run that worker ``worker_id`` holds reaches its task at once
    (``Task.cancel_requested``), without waiting for the next heartbeat.

    Reconnects with a back-off when the connection drops, and wakes the worker after each
    reconnect, since notifications sent meanwhile were lost.
    """

    def __init__(
        self, database: str, wake: threading.Event, stop: threading.Event, worker_id: str = ""
    ) -> None:
        super().__init__(name="tasks-worker-listen", daemon=True)
        self.database = database
        self.worker_id = worker_id
        self.wake = wake
        self.stop = stop
        self.ready = threading.Event()

    def run(self) -> None:
        """Listen until ``stop`` is set."""
        delay = 0.1
        while not self.stop.is_set():
            wrapper = None
            try:
                wrapper = open_listen_connection(self.database, CHANNEL, CANCEL_CHANNEL)
                delay = 0.1
                self.ready.set()
                self.wake.set()
                raw = wrapper.connection
                while not self.stop.is_set():
                    for notice in raw.notifies(timeout=0.5, stop_after=1):
                        if notice.channel != CANCEL_CHANNEL:
                            self.wake.set()
                            continue
                        worker_id, _, run_id = notice.payload.partition(" ")
                        if worker_id == self.worker_id and run_id:
                            request_cancel(run_id)
            except Exception as exc:
                if self.stop.is_set():
                    break
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                close_listen_connection(wrapper)
