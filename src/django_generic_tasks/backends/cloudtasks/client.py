"""The Cloud Tasks client: one per process, created lazily, re-created after ``fork``.

``google-cloud-tasks`` (the ``cloudtasks`` extra) is imported only here, and only when a client
is first needed, so settings and checks work without it.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

from ...exceptions import MissingDependencyError

INSTALL_HINT = "pip install 'django-generic-tasks[cloudtasks]'"
EMULATOR_HOST_ENV = "CLOUD_TASKS_EMULATOR_HOST"
"""Environment variable read when the backend's ``emulator_host`` option is not given."""
# gRPC codes worth another try: the create may not have happened, and every task we create is
# named, so a retry of one that did happen answers ALREADY_EXISTS instead of doubling it.
TRANSIENT_ERRORS = (
    "Aborted",
    "DeadlineExceeded",
    "InternalServerError",
    "ResourceExhausted",
    "ServiceUnavailable",
)


def import_tasks_v2() -> Any:
    """Return ``google.cloud.tasks_v2``, or raise ``MissingDependencyError`` with a hint."""
    try:
        return importlib.import_module("google.cloud.tasks_v2")
    except ImportError as exc:
        raise MissingDependencyError(
            f"CloudTasksBackend needs google-cloud-tasks: {INSTALL_HINT}"
        ) from exc


def new_client(emulator_host: str | None, api_endpoint: str | None = None) -> Any:
    """A new ``CloudTasksClient``: for the emulator, insecure gRPC and anonymous credentials;
    otherwise Application Default Credentials over TLS, to ``api_endpoint`` if given."""
    tasks_v2 = import_tasks_v2()
    if emulator_host:
        import grpc  # type: ignore[import-untyped]
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        transport = CloudTasksGrpcTransport(
            channel=grpc.insecure_channel(emulator_host),
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )
        return tasks_v2.CloudTasksClient(transport=transport)
    if api_endpoint:
        return tasks_v2.CloudTasksClient(client_options={"api_endpoint": api_endpoint})
    return tasks_v2.CloudTasksClient()


def new_retry(deadline: float) -> Any:
    """A bounded ``google.api_core`` retry of transient errors, ``deadline`` seconds in all."""
    from google.api_core import exceptions, retry

    transient = tuple(getattr(exceptions, name) for name in TRANSIENT_ERRORS)
    return retry.Retry(
        predicate=retry.if_exception_type(*transient),
        initial=0.1,
        maximum=min(5.0, max(deadline / 4, 0.1)),
        multiplier=2.0,
        timeout=deadline,
    )


class ClientHolder:
    """Holds one client for the current process; thread-safe, and fork-aware by pid."""

    def __init__(self, emulator_host: str | None, api_endpoint: str | None = None) -> None:
        self.emulator_host = emulator_host
        self.api_endpoint = api_endpoint
        self._lock = threading.Lock()
        self._client: Any = None
        self._pid = 0

    def get(self) -> Any:
        """The client of this process, created on first use (again in a forked child)."""
        client, pid = self._client, self._pid
        if client is not None and pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                # A client inherited through fork shares the parent's gRPC channel, which is
                # not fork-safe: drop it without closing it (closing would touch the parent's).
                self._client = new_client(self.emulator_host, self.api_endpoint)
                self._pid = os.getpid()
            return self._client

    def close(self) -> None:
        """Close this process's client, if any; the next ``get()`` makes a new one."""
        with self._lock:
            client, pid = self._client, self._pid
            self._client, self._pid = None, 0
        if client is not None and pid == os.getpid():
            client.transport.close()
