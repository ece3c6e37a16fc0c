"""PostgreSQL ``LISTEN`` connections: opened apart from Django's per-thread connections.

Used by the worker's wake-up listener (``worker.notify``) and by ``wait()``'s finish listener
(``store.finish_notices``).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("django_generic_tasks")

WORKERS_CHANNEL = "django_generic_tasks"
"""Where idle workers listen for new due runs (migration 0002's insert trigger, and
``worker.notify.notify_workers()``)."""


CANCEL_CHANNEL = "django_generic_tasks_cancel"
"""Where workers hear that a run they hold was asked to stop: ``"<worker id> <run id>"``
(``PostgreSQLRunStore.announce_cancel()``)."""


def open_listen_connection(database: str, *channels: str) -> Any:
    """A new autocommit connection to the alias ``database`` that listens on ``channels``
    (a Django connection wrapper; read notices from its ``.connection.notifies()``)."""
    from django.db import connections

    wrapper = connections.create_connection(database)
    wrapper.ensure_connection()
    raw = wrapper.connection
    raw.autocommit = True
    for channel in channels:
        raw.execute(f"LISTEN {channel}")
    return wrapper


def close_listen_connection(wrapper: Any) -> None:
    """Close a connection from ``open_listen_connection()``; a failure is only logged."""
    if wrapper is None:
        return
    try:
        wrapper.close()
    except Exception:
        logger.debug("Closing the LISTEN connection failed", exc_info=True)
