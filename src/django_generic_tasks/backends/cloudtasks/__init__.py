"""``CloudTasksBackend``: each start becomes a Google Cloud Tasks HTTP-target task.

Cloud Tasks pushes the task to its endpoint (``POST <base_url>/<Task.name>``, the router of
``django_generic_tasks.api``) with an OIDC token for ``service_account_email``; the endpoint runs
it and answers 5xx for a failure worth retrying, so the queue retries it, and 2xx once the run
is done, discarded, or out of attempts (it reads ``X-CloudTasks-TaskRetryCount``). The sending
side is this module (``request``, ``client``); the receiving side, which the endpoint calls, is
``push``.

Options (keyword arguments, or ``TASKS_BACKEND_OPTIONS``):

| option | meaning |
| --- | --- |
| ``project``, ``location`` | the Google Cloud project and region of the queues (required) |
| ``queue`` | Cloud Tasks queue for task queues not in ``queues`` (default: the task's queue name) |
| ``queues`` | task queue name -> Cloud Tasks queue id or full ``projects/.../queues/...`` path |
| ``base_url`` | absolute URL where the router is mounted, e.g. ``https://app.example/api/tasks/`` |
| ``service_account_email`` | account whose OIDC token Cloud Tasks sends (required) |
| ``audience`` | the token's audience (default: the origin of ``base_url``); the endpoint's |
|  | ``TASKS_OIDC_AUDIENCE`` must be the same value |
| ``emulator_host`` | ``host:port`` of a Cloud Tasks emulator (default: env |
|  | ``CLOUD_TASKS_EMULATOR_HOST``): insecure gRPC, anonymous credentials |
| ``api_endpoint`` | ``host[:port]`` of the Cloud Tasks API (default: the global one), e.g. |
|  | a Private Service Connect endpoint; TLS and Application Default Credentials as |
|  | usual; not together with ``emulator_host`` |
| ``allow_emulator`` | ``True`` lets an emulator be used while ``DEBUG`` is off (test |
|  | settings); otherwise an emulator with ``DEBUG = False`` is refused at the first start |
|  | and by ``manage.py check`` (``django_generic_tasks.E203``), so a stray |
|  | ``CLOUD_TASKS_EMULATOR_HOST`` cannot divert production tasks to an insecure host |
| ``emulator_oidc_token`` | test hook, only with ``emulator_host``: a token (or a callable |
|  | ``(audience, service_account_email) -> token``) sent as ``Authorization: Bearer``, |
|  | because the emulator mints none |
| ``retry_deadline`` | seconds a create is retried on transient errors (default 30) |
| ``bulk_concurrency`` | creates in flight at once in ``enqueue_many`` (default 16) |
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from django.core.checks import CheckMessage

from ...core.enqueue import EnqueueRequest
from ...core.handles import TaskHandle
from ...core.status import TaskStatus
from ...exceptions import (
    BulkEnqueueError,
    CloudTasksEnqueueError,
    ConfigurationError,
)
from ..base import BaseBackend
from .client import EMULATOR_HOST_ENV, ClientHolder, new_retry
from .request import (
    build_create_task_request,
    default_audience,
    is_queue_path,
    queue_id,
    queue_path,
    task_url,
)

__all__ = ["CloudTasksBackend"]

logger = logging.getLogger("django_generic_tasks")

PER_ATTEMPT_TIMEOUT = 20.0
"""Seconds one ``CreateTask`` call may take (Google's default for it)."""

TokenSource = str | Callable[[str, str], str]


class CloudTasksBackend(BaseBackend):
    """Starts tasks as Google Cloud Tasks HTTP-target tasks; the queue pushes them to the API.

    One gRPC client per process, created on first use and re-created after ``fork``. Options
    are described in this module's docstring; missing ones are reported by ``manage.py check``.
    """

    supports_defer = True
    supports_key = True
    supports_retries = True
    crash_safe = True
    needs_server = "Google Cloud Tasks"
    pushes_to_endpoints = True

    def __init__(
        self,
        project: str | None = None,
        location: str | None = None,
        queue: str | None = None,
        base_url: str | None = None,
        service_account_email: str | None = None,
        *,
        audience: str | None = None,
        queues: Mapping[str, str] | None = None,
        emulator_host: str | None = None,
        api_endpoint: str | None = None,
        emulator_oidc_token: TokenSource | None = None,
        retry_deadline: float = 30.0,
        bulk_concurrency: int = 16,
        service_account: str | None = None,
        allow_emulator: bool = False,
    ) -> None:
        # ``service_account`` is the name older releases used for ``service_account_email``.
        self.project = project
        self.location = location
        self.queue = queue
        self.base_url = base_url
        self.service_account_email = service_account_email or service_account
        self.queues = dict(queues or {})
        self.emulator_host = emulator_host or os.environ.get(EMULATOR_HOST_ENV) or None
        self.emulator_from_env = bool(self.emulator_host and not emulator_host)
        self.allow_emulator = allow_emulator
        self.api_endpoint = api_endpoint
        self.audience = audience or (default_audience(base_url) if base_url else None)
        self.emulator_oidc_token = emulator_oidc_token
        self.retry_deadline = retry_deadline
        self.bulk_concurrency = bulk_concurrency
        self._validate()
        self._clients = ClientHolder(self.emulator_host, self.api_endpoint)
        self._retry: Any = None

    def _validate(self) -> None:
        name = type(self).__name__
        for option in ("project", "location", "queue", "base_url", "service_account_email"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigurationError(f"{name} option {option!r} must be a non-empty string.")
        if self.base_url is not None and not _is_absolute_http_url(self.base_url):
            raise ConfigurationError(
                f"{name} option 'base_url' must be an absolute http(s) URL where the tasks router "
                f"is mounted, such as 'https://app.example.com/api/tasks/'; got {self.base_url!r}."
            )
        for task_queue, cloud_queue in self.queues.items():
            if not isinstance(cloud_queue, str) or not cloud_queue:
                raise ConfigurationError(
                    f"{name} option 'queues' maps {task_queue!r} to {cloud_queue!r}; use a queue "
                    "id or a 'projects/P/locations/L/queues/Q' path."
                )
            if "/" in cloud_queue and not is_queue_path(cloud_queue):
                raise ConfigurationError(
                    f"{name} option 'queues' maps {task_queue!r} to {cloud_queue!r}, which is not "
                    "a queue id nor a 'projects/P/locations/L/queues/Q' path."
                )
        if self.api_endpoint is not None:
            _validate_api_endpoint(name, self.api_endpoint, self.emulator_host)
        if self.emulator_oidc_token is not None and not self.emulator_host:
            raise ConfigurationError(
                f"{name} option 'emulator_oidc_token' is a test hook for the Cloud Tasks emulator "
                "and is only accepted together with 'emulator_host'; real Cloud Tasks signs the "
                "token itself (service_account_email)."
            )
        if not isinstance(self.allow_emulator, bool):
            raise ConfigurationError(f"{name} option 'allow_emulator' must be True or False.")
        if not (isinstance(self.retry_deadline, int | float) and self.retry_deadline > 0):
            raise ConfigurationError(f"{name} option 'retry_deadline' must be a positive number.")
        if not (isinstance(self.bulk_concurrency, int) and self.bulk_concurrency >= 1):
            raise ConfigurationError(f"{name} option 'bulk_concurrency' must be an integer >= 1.")

    # -- configuration -------------------------------------------------------------------

    def missing_options(self) -> list[str]:
        """Names of required options that are not set (the account is optional on emulators)."""
        required = ["project", "location", "base_url"]
        if not self.emulator_host:
            required.append("service_account_email")
        return [option for option in required if not getattr(self, option)]

    def queue_path_for(self, task_queue: str) -> str:
        """The full Cloud Tasks queue path that runs of task queue ``task_queue`` go to.

        Configured queues (``queues``, ``queue``) may be full paths; an unmapped task queue
        name must be a plain queue id (``InvalidOptionError`` otherwise), so no caller of
        ``start(queue=...)`` can send a run to another project's queue.
        """
        cloud_queue = self.queues.get(task_queue) or self.queue or queue_id(task_queue)
        return queue_path(self.project or "", self.location or "", cloud_queue)

    def url_for(self, task_name: str) -> str:
        """The endpoint URL Cloud Tasks posts ``task_name``'s runs to."""
        return task_url(self.base_url or "", task_name)

    def create_task_request(self, request: EnqueueRequest) -> dict[str, Any]:
        """The ``CreateTaskRequest`` (dict form) this backend sends for ``request``."""
        missing = self.missing_options()
        if missing:
            raise ConfigurationError(
                f"{type(self).__name__} is missing option(s) {', '.join(missing)}; set them in "
                "TASKS_BACKEND_OPTIONS (python manage.py check lists them)."
            )
        extra_headers = None
        if self.emulator_oidc_token is not None and self.emulator_host:
            token = self.emulator_oidc_token
            if callable(token):
                token = token(self.audience or "", self.service_account_email or "")
            extra_headers = {"Authorization": f"Bearer {token}"}
        return build_create_task_request(
            request,
            parent=self.queue_path_for(request.queue),
            url=self.url_for(request.task_name),
            service_account_email=self.service_account_email,
            audience=self.audience or "",
            extra_headers=extra_headers,
        )

    # -- enqueueing ----------------------------------------------------------------------

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Create one Cloud Tasks task for ``request``; a duplicate ``key`` is not an error."""
        create = self.create_task_request(request)
        self._create(self._client(create["parent"]), create, request)
        return self.handle_for(request)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Create many tasks concurrently (at most ``bulk_concurrency`` at once).

        Every request is validated before any task is created. If some creates fail, the others
        still happen and ``BulkEnqueueError`` is raised with one handle per request (the failed
        ones ``failed``, with ``error``) and the ``(index, exception)`` of each failure.
        """
        creates = [self.create_task_request(request) for request in requests]
        if not creates:
            return []
        client = self._client(creates[0]["parent"])

        def create_one(index: int) -> BaseException | None:
            try:
                self._create(client, creates[index], requests[index])
            except Exception as exc:  # reported per task below, like the others
                return exc
            return None

        workers = min(self.bulk_concurrency, len(creates))
        if workers == 1:
            outcomes = [create_one(index) for index in range(len(creates))]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="cloudtasks-enqueue") as pool:
                outcomes = list(pool.map(create_one, range(len(creates))))
        handles = [self.handle_for(request) for request in requests]
        failures = [(i, exc) for i, exc in enumerate(outcomes) if exc is not None]
        if failures:
            from ...execution import error_info

            for index, exc in failures:
                handles[index].status = TaskStatus.FAILED
                handles[index].error = error_info(exc)
            raise BulkEnqueueError(
                f"Cloud Tasks accepted {len(requests) - len(failures)} of {len(requests)} tasks; "
                f"{len(failures)} were not started (first: {failures[0][1]}). The exception's "
                "handles and failures say which.",
                handles=handles,
                failures=failures,
            )
        return handles

    def _create(self, client: Any, create: dict[str, Any], request: EnqueueRequest) -> None:
        from google.api_core import exceptions as gexc

        if self._retry is None:
            self._retry = new_retry(self.retry_deadline)
        parent = create["parent"]
        try:
            client.create_task(
                request=create,
                retry=self._retry,
                timeout=min(PER_ATTEMPT_TIMEOUT, self.retry_deadline),
            )
        except gexc.AlreadyExists:
            # Same key as a run already started, or a retried create whose first try landed.
            logger.info(
                "Task %s (run %s) already exists in %s; not started again.",
                request.task_name,
                request.run_id,
                parent,
                extra={"task_name": request.task_name, "run_id": request.run_id},
            )
        except gexc.RetryError as exc:
            raise CloudTasksEnqueueError(
                f"Cloud Tasks queue {parent} did not accept task {request.task_name!r} "
                f"(run {request.run_id}): still failing after retrying for "
                f"{self.retry_deadline:g}s: {exc.cause or exc}"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            raise CloudTasksEnqueueError(
                f"Cloud Tasks queue {parent} did not accept task {request.task_name!r} "
                f"(run {request.run_id}): {_status_name(exc)}: {exc.message}"
            ) from exc
        except Exception as exc:
            if _is_auth_error(exc):
                raise _auth_error(parent, exc) from exc
            raise

    @property
    def emulated_push_queue(self) -> bool:  # type: ignore[override]
        """Whether the push queue is an emulator this project may use (``DEBUG`` or
        ``allow_emulator``): it mints no OIDC token, so its deliveries' headers are believed
        without one."""
        return bool(self.emulator_host) and self.emulator_refused() is None

    def emulator_refused(self) -> str | None:
        """Why this backend may not use its emulator now (``None``: it may, or has none).

        An emulator is plain, unauthenticated gRPC: outside ``DEBUG`` it must be asked for
        explicitly (``allow_emulator``), never picked up by accident from the environment.
        """
        from django.conf import settings

        if not self.emulator_host or self.allow_emulator or settings.DEBUG:
            return None
        source = f"env {EMULATOR_HOST_ENV}" if self.emulator_from_env else "option emulator_host"
        return (
            f"CloudTasksBackend is configured to use the Cloud Tasks emulator at "
            f"{self.emulator_host!r} ({source}) while DEBUG is off: tasks would go over "
            "insecure gRPC to that host instead of Google Cloud Tasks."
        )

    def _client(self, parent: str) -> Any:
        refused = self.emulator_refused()
        if refused:
            raise ConfigurationError(
                f"{refused} Unset {EMULATOR_HOST_ENV} / emulator_host in production, or set "
                "TASKS_BACKEND_OPTIONS['allow_emulator'] = True in test settings."
            )
        try:
            return self._clients.get()
        except Exception as exc:
            if _is_auth_error(exc):
                raise _auth_error(parent, exc) from exc
            raise

    # -- everything else -----------------------------------------------------------------

    def check(self) -> list[CheckMessage]:
        """Missing dependency or options (errors); an audience, account or ``base_url`` that
        the endpoint of this project would reject (warnings)."""
        from .checks import check_cloudtasks_backend

        return check_cloudtasks_backend(self)

    def close(self) -> None:
        """Close this process's gRPC client (a new one is made on the next start)."""
        self._clients.close()

    def __repr__(self) -> str:
        where = f" emulator={self.emulator_host}" if self.emulator_host else ""
        where = where or (f" endpoint={self.api_endpoint}" if self.api_endpoint else "")
        return f"<CloudTasksBackend {self.queue_path_for('default')}{where}>"


def _validate_api_endpoint(name: str, endpoint: object, emulator_host: str | None) -> None:
    valid = isinstance(endpoint, str) and endpoint == endpoint.strip() != ""
    if not valid or "/" in str(endpoint):
        raise ConfigurationError(
            f"{name} option 'api_endpoint' must be a 'host' or 'host:port' such as "
            f"'cloudtasks.googleapis.com:443' (no scheme, no path); got {endpoint!r}."
        )
    if emulator_host:
        raise ConfigurationError(
            f"{name} options 'api_endpoint' ({endpoint!r}) and 'emulator_host' "
            f"({emulator_host!r}, maybe from env {EMULATOR_HOST_ENV}) exclude each other: "
            "one is the real API over TLS, the other an insecure emulator."
        )


def _is_absolute_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def _status_name(exc: Any) -> str:
    code = getattr(exc, "grpc_status_code", None)
    return str(getattr(code, "name", None) or exc.code or "error")


def _is_auth_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("google.auth")


def _auth_error(parent: str, exc: BaseException) -> CloudTasksEnqueueError:
    return CloudTasksEnqueueError(
        f"Cannot authenticate to Cloud Tasks to enqueue into {parent}: {exc}. Set up "
        "Application Default Credentials (on Google Cloud, the service's account; locally, "
        "`gcloud auth application-default login`), or set emulator_host."
    )
