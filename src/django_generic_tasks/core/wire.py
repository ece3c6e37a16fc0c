"""What travels over HTTP between backends that push runs and the tasks endpoints, defined once.

Backends that push runs write these headers and URL names; the HTTP layer reads them. Cloud
Tasks' own headers live with its receiving side, ``backends.cloudtasks.push``.
"""

from __future__ import annotations

RUN_ID_HEADER = "X-Task-Run-Id"
"""Set by backends that push runs: the run id the endpoint reports."""

TRACEPARENT_HEADER = "traceparent"
"""W3C Trace Context: set by backends that push runs, continued by the endpoint."""

RUN_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,100}$"
"""Run ids accepted from a header or a URL."""

RUN_URL_NAME_PREFIX = "run-"
"""URL name of ``POST <mount>/<Task.name>`` is ``"run-" + Task.name``."""
START_URL_NAME_PREFIX = "start-"
"""URL name of ``POST <mount>/<Task.name>/start`` is ``"start-" + Task.name``."""
RUN_STATUS_URL_NAME = "tasks-run-status"
"""URL name of ``GET <mount>/runs/<run_id>``."""
NOT_FOUND_URL_NAME = "tasks-not-found"
"""URL name of the catch-all that answers 404 for paths that are no task's endpoint."""


def meta_key(header: str) -> str:
    """The ``request.META`` key Django stores ``header`` under."""
    return "HTTP_" + header.upper().replace("-", "_")
