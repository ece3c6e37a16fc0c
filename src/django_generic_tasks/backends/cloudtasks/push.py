"""Cloud Tasks' receiving side: what a push delivery to ``POST <mount>/<Task.name>`` carries,
who the push queue is, and what the endpoint's answer means to it.

The task endpoint calls one hook, ``receive(request, auth)``: it says whether the request is a
push queue's delivery (believed only from an authenticated push queue), and which attempt of
which run it is. ``answer_status(outcome)`` is the answer Cloud Tasks reads: 500 when the
task's retry policy wants another attempt (the queue retries every non-2xx), else 200.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...conf import get_backend, get_settings
from ...core.status import new_run_id
from ...core.wire import RUN_ID_HEADER, RUN_ID_PATTERN, meta_key
from ...exceptions import ConfigurationError, MissingDependencyError, RetryAfter
from ...security.auth import AuthCallable, authenticates_push_queue
from . import CloudTasksBackend

if TYPE_CHECKING:
    from django.http import HttpRequest

    from ...execution.attempts import Outcome

__all__ = [
    "CLOUD_TASKS_NAME_HEADER",
    "EXECUTION_COUNT_HEADER",
    "QUEUE_NAME_HEADER",
    "RETRY_COUNT_HEADER",
    "Delivery",
    "answer_status",
    "is_push_delivery",
    "push_headers_openapi",
    "push_queue_trusted",
    "read_run_headers",
    "receive",
]

RETRY_COUNT_HEADER = "X-CloudTasks-TaskRetryCount"
"""Set by Cloud Tasks: retries so far (attempt = value + 1)."""
EXECUTION_COUNT_HEADER = "X-CloudTasks-TaskExecutionCount"
"""Set by Cloud Tasks: deliveries that reached the handler so far."""
CLOUD_TASKS_NAME_HEADER = "X-CloudTasks-TaskName"
"""Set by Cloud Tasks: the short task name, which marks a request as a push delivery."""
QUEUE_NAME_HEADER = "X-CloudTasks-QueueName"
"""Set by Cloud Tasks: the queue that delivered the request."""

_RETRY_COUNT_META = meta_key(RETRY_COUNT_HEADER)
_EXECUTION_COUNT_META = meta_key(EXECUTION_COUNT_HEADER)
_RUN_ID_META = meta_key(RUN_ID_HEADER)
_CLOUD_TASKS_NAME_META = meta_key(CLOUD_TASKS_NAME_HEADER)
_RUN_ID_RE = re.compile(RUN_ID_PATTERN)
_PUSH_METAS = (
    _CLOUD_TASKS_NAME_META,
    _RETRY_COUNT_META,
    _EXECUTION_COUNT_META,
    meta_key(QUEUE_NAME_HEADER),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What ``receive()`` read from a request to a task endpoint.

    ``push``: a push queue's delivery (authenticated as the push queue and carrying its
    headers), run under the task's retry policy as ``backend``; otherwise a direct call.
    ``attempt`` and ``run_id`` come from the push headers when ``trusted``; ``errors`` are
    field errors for malformed ones (422).
    """

    push: bool
    trusted: bool
    attempt: int
    run_id: str
    errors: list[dict[str, Any]]
    backend: str = CloudTasksBackend.name


def receive(request: HttpRequest, auth: AuthCallable | None) -> Delivery:
    """The hook of ``POST <mount>/<Task.name>``: read ``request`` (admitted by ``auth``)."""
    trusted = push_queue_trusted(auth)
    attempt, run_id, errors = read_run_headers(request, trusted=trusted)
    return Delivery(
        push=trusted and is_push_delivery(request),
        trusted=trusted,
        attempt=attempt,
        run_id=run_id,
        errors=errors,
    )


def answer_status(outcome: Outcome) -> int:
    """The answer to a push delivery: 500 when the retry policy wants another attempt (Cloud
    Tasks retries on 5xx), 503 when the task asked for its time (``RetryAfter``: the answer's
    ``Retry-After`` header, which Cloud Tasks considers), else 200 (succeeded, discarded, or
    failed for good)."""
    if not outcome.decision.retry:
        return 200
    return 503 if retry_after_header(outcome) is not None else 500


def retry_after_header(outcome: Outcome) -> str | None:
    """The ``Retry-After`` header (whole seconds) of a push delivery's answer when the task
    raised ``RetryAfter``; ``None`` otherwise."""
    error, decision = outcome.error, outcome.decision
    if not decision.retry or decision.retry_at is None or error is None:
        return None
    if error.type != f"{RetryAfter.__module__}.{RetryAfter.__qualname__}":
        return None
    seconds = (decision.retry_at - datetime.now(UTC)).total_seconds()
    return str(max(0, math.ceil(seconds)))


def push_queue_trusted(auth: AuthCallable | None) -> bool:
    """Whether the push headers (attempt, run id) of requests ``auth`` admitted are believed:
    ``auth`` authenticates the push queue, or ``TASKS_TRUST_PUSH_HEADERS`` says a proxy does,
    or the push queue is an emulator this project may use (``DEBUG`` or ``allow_emulator``)."""
    if authenticates_push_queue(auth) or get_settings().trust_push_headers:
        return True
    return emulated_push_queue()


def emulated_push_queue() -> bool:
    """Whether ``TASKS_BACKEND`` pushes through an emulator it may use (which signs nothing)."""
    try:
        backend = get_backend()
    except (ConfigurationError, MissingDependencyError):
        return False
    return bool(backend.emulated_push_queue)


def is_push_delivery(request: HttpRequest) -> bool:
    """Whether ``request`` says it is a push queue's delivery (Cloud Tasks sets its
    ``X-CloudTasks-*`` headers on every delivery). Only believe it for a request authenticated
    as the push queue."""
    meta = request.META
    return any(key in meta for key in _PUSH_METAS)


def _header_error(header: str, kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "loc": ["header", header], "msg": message}


def read_run_headers(
    request: HttpRequest, *, trusted: bool = True
) -> tuple[int, str, list[dict[str, Any]]]:
    """The attempt number and run id a push queue sent, and field errors for bad values.

    Attempt = ``X-CloudTasks-TaskRetryCount`` + 1, else ``X-CloudTasks-TaskExecutionCount``
    + 1, else 1 (Django's ``META`` makes header names case-insensitive). The run id is
    ``X-Task-Run-Id``, else ``X-CloudTasks-TaskName`` when it is a valid id, else a new one.
    Unless ``trusted`` (the request was authenticated as the push queue), the headers are
    ignored: attempt 1 and a new run id.
    """
    if not trusted:
        return 1, new_run_id(), []
    meta, errors, attempt = request.META, [], 0
    for header, key in (
        (RETRY_COUNT_HEADER, _RETRY_COUNT_META),
        (EXECUTION_COUNT_HEADER, _EXECUTION_COUNT_META),
    ):
        value = meta.get(key)
        if value is None:
            continue
        value = value.strip()
        if not (value.isascii() and value.isdigit()):
            errors.append(_header_error(header, "int_parsing", "Expected an integer >= 0."))
        elif not attempt:
            attempt = int(value) + 1
    run_id = meta.get(_RUN_ID_META)
    if run_id is not None and not _RUN_ID_RE.match(run_id):
        errors.append(
            _header_error(RUN_ID_HEADER, "string_pattern_mismatch", f"Must match {RUN_ID_PATTERN}")
        )
    if not run_id:
        name = meta.get(_CLOUD_TASKS_NAME_META)
        run_id = name if name and _RUN_ID_RE.match(name) else new_run_id()
    return attempt or 1, run_id, errors


def push_headers_openapi() -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` of the push headers ``read_run_headers`` reads."""
    count = {"type": "integer", "minimum": 0}
    return [
        {
            "in": "header",
            "name": RETRY_COUNT_HEADER,
            "required": False,
            "schema": count,
            "description": "Set by Cloud Tasks: retries so far; attempt = value + 1 "
            "(422 for a value that is not a whole number).",
        },
        {
            "in": "header",
            "name": EXECUTION_COUNT_HEADER,
            "required": False,
            "schema": dict(count),
            "description": "Set by Cloud Tasks; used when the retry count is absent.",
        },
        {
            "in": "header",
            "name": RUN_ID_HEADER,
            "required": False,
            "schema": {"type": "string", "pattern": RUN_ID_PATTERN},
            "description": "The run id to report (backends that push runs set it); "
            "default: the Cloud Tasks task name, or a new id. An empty or malformed value "
            "answers 422.",
        },
        {
            "in": "header",
            "name": CLOUD_TASKS_NAME_HEADER,
            "required": False,
            "schema": {"type": "string"},
            "description": "Set by Cloud Tasks: the run id when there is no "
            f"{RUN_ID_HEADER} and it is a valid one (ignored otherwise).",
        },
    ]
