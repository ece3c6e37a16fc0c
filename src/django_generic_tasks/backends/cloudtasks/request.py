"""Pure functions that turn an ``EnqueueRequest`` into a Cloud Tasks ``CreateTaskRequest``.

No Google import here: the result is the plain ``dict`` form that ``CloudTasksClient.create_task``
accepts, so it can be inspected (and tested) without a client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from ...core.enqueue import EnqueueRequest
from ...core.wire import RUN_ID_HEADER, TRACEPARENT_HEADER
from ...exceptions import InvalidOptionError, UnsupportedOptionError

MIN_DISPATCH_DEADLINE = 15.0
"""Cloud Tasks' shortest dispatch deadline for HTTP targets, in seconds."""
MAX_DISPATCH_DEADLINE = 1800.0
"""Cloud Tasks' longest dispatch deadline for HTTP targets, in seconds (30 minutes)."""
MAX_TASK_BYTES = 100 * 1024
"""Cloud Tasks' largest task; the JSON body must fit in it with the headers and URL."""
_QUEUE_PATH_PARTS = 6
_QUEUE_ID = re.compile(r"[A-Za-z0-9-]{1,100}")


def task_url(base_url: str, task_name: str) -> str:
    """The URL of ``task_name``'s endpoint under ``base_url``, whatever its trailing slashes."""
    return f"{base_url.rstrip('/')}/{quote(task_name, safe='')}"


def default_audience(base_url: str) -> str:
    """The OIDC audience used when none is configured: the origin of ``base_url``.

    The origin is what Cloud Run accepts as the audience of its service URL, and one value for
    every task, so it can be set as ``TASKS_OIDC_AUDIENCE`` on the receiving side.
    """
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def queue_path(project: str, location: str, queue: str) -> str:
    """The full resource name of ``queue``; a value that already is one is kept as is.

    Only for queues the project configured (options ``queue`` and ``queues``): a queue name
    that arrives with a run goes through ``queue_id()`` first.
    """
    if queue.startswith("projects/"):
        return queue
    return f"projects/{project}/locations/{location}/queues/{queue}"


def queue_id(task_queue: str) -> str:
    """``task_queue`` when it can be a Cloud Tasks queue id in this project, else an error.

    A run's queue name comes from ``start(queue=...)``, possibly from an HTTP caller: it may
    pick a queue of the configured project and location, never another project's queue path.
    """
    if not _QUEUE_ID.fullmatch(task_queue):
        raise InvalidOptionError(
            f"Queue {task_queue!r} cannot be a Cloud Tasks queue id: use 1-100 letters, digits "
            "or hyphens, or map the name to a queue in the backend's 'queues' option."
        )
    return task_queue


def is_queue_path(value: str) -> bool:
    """Whether ``value`` looks like ``projects/P/locations/L/queues/Q``."""
    parts = value.split("/")
    return (
        len(parts) == _QUEUE_PATH_PARTS
        and parts[0::2] == ["projects", "locations", "queues"]
        and all(parts[1::2])
    )


def task_id(request: EnqueueRequest) -> str:
    """The Cloud Tasks task id for ``request``.

    With a ``key`` it depends only on the task name and the key, so a second start with the
    same key collides with the first (``ALREADY_EXISTS``) instead of running twice. Without
    one it derives from the run id, so retrying a create that did reach Cloud Tasks cannot
    create a second task. Hashing spreads the ids, as Cloud Tasks recommends for named tasks.
    """
    source = f"key:{request.task_name}:{request.key}" if request.key else f"run:{request.run_id}"
    return hashlib.sha256(source.encode()).hexdigest()


def dispatch_deadline(request: EnqueueRequest) -> timedelta | None:
    """The dispatch deadline for the task's ``timeout`` (``None``: Cloud Tasks' default)."""
    if request.timeout is None:
        return None
    if not MIN_DISPATCH_DEADLINE <= request.timeout <= MAX_DISPATCH_DEADLINE:
        raise UnsupportedOptionError(
            f"Task {request.task_name!r} has timeout={request.timeout:g}s, but Cloud Tasks "
            f"waits for an HTTP task between {MIN_DISPATCH_DEADLINE:g}s and "
            f"{MAX_DISPATCH_DEADLINE:g}s (30 minutes). Set the task's timeout within that range, "
            "or to None for Cloud Tasks' default of 10 minutes."
        )
    return timedelta(seconds=request.timeout)


def build_create_task_request(
    request: EnqueueRequest,
    *,
    parent: str,
    url: str,
    service_account_email: str | None,
    audience: str,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``CreateTaskRequest`` (dict form) that starts ``request`` in queue ``parent``.

    An HTTP-target task: ``POST url`` with the params as the JSON body, signed with an OIDC
    token for ``service_account_email`` and ``audience`` when an account is configured.
    """
    body = request.params_json.encode()
    if len(body) > MAX_TASK_BYTES - 4096:
        raise InvalidOptionError(
            f"Task {request.task_name!r} params are {len(body):,} bytes of JSON; a Cloud Tasks "
            f"task holds at most {MAX_TASK_BYTES // 1024} KB. Store large data elsewhere (a "
            "database row, a bucket) and pass its id in the params."
        )
    headers = {"Content-Type": "application/json", RUN_ID_HEADER: request.run_id}
    if request.trace_context:  # W3C Trace Context: the endpoint continues the run's trace
        headers[TRACEPARENT_HEADER] = request.trace_context
    if extra_headers:
        headers.update(extra_headers)
    http_request: dict[str, Any] = {
        "url": url,
        "http_method": "POST",
        "headers": headers,
        "body": body,
    }
    if service_account_email:
        http_request["oidc_token"] = {
            "service_account_email": service_account_email,
            "audience": audience,
        }
    task: dict[str, Any] = {
        "name": f"{parent}/tasks/{task_id(request)}",
        "http_request": http_request,
    }
    if request.run_after is not None:
        task["schedule_time"] = request.run_after
    deadline = dispatch_deadline(request)
    if deadline is not None:
        task["dispatch_deadline"] = deadline
    return {"parent": parent, "task": task}
