"""``DatabaseBackend``: each start is a ``TaskRun`` row, written in the caller's transaction.

Run the worker with ``python manage.py tasks_worker``. Needs ``django_generic_tasks`` in
``INSTALLED_APPS`` and its migrations applied. Works on PostgreSQL, SQLite and MariaDB >= 10.6
/ MySQL >= 8; every statement goes through ``django_generic_tasks.store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.core.checks import CheckMessage
from django.core.checks import Error as CheckError

from ..check_ids import CheckId
from ..core.enqueue import EnqueueRequest
from ..core.handles import TaskHandle
from ..exceptions import ConfigurationError, RunNotFoundError
from .base import BaseBackend

if TYPE_CHECKING:
    from ..core.results import FinishNotices
    from ..execution.progress import ProgressSink
    from ..workflows.handle import WorkflowState
    from ..workflows.rules import Plan


class DatabaseBackend(BaseBackend):
    """Stores runs in the database (``TaskRun``); ``manage.py tasks_worker`` runs them.

    ``start()`` inserts the row in the caller's transaction: a rollback leaves no run, a commit
    makes it visible to workers at once. ``database`` picks the connection alias. A ``key`` is
    unique per task among unfinished runs: starting a task with a key its unfinished run holds
    returns that run.
    """

    supports_defer = True
    supports_priority = True
    supports_key = True
    supports_results = True
    supports_retries = True
    enqueues_in_transaction = True
    supports_progress = True
    supports_cancel = True
    supports_workflows = True
    supports_continuations = True
    crash_safe = True
    concurrency_limits = "store"
    rate_limits = "store"
    supports_pause = True
    needs_server = "your database, `tasks_worker`"
    waits_outside_transactions = True
    joins_timed_out_attempts = True

    def __init__(self, database: str = "default") -> None:
        if not isinstance(database, str) or not database:
            raise ConfigurationError("DatabaseBackend(database=...) must be a connection alias.")
        self.database = database

    def __repr__(self) -> str:
        return f"<DatabaseBackend database={self.database!r}>"

    @property
    def run_database(self) -> str:  # type: ignore[override]
        """The connection alias runs are stored in (``database``)."""
        return self.database

    @property
    def connection(self) -> Any:
        """The Django connection runs are written through."""
        from django.db import connections

        return connections[self.database]

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Insert one run; with a ``key``, return the task's unfinished run that holds it."""
        return self.enqueue_many([request])[0]

    def enqueue_many(
        self, requests: Sequence[EnqueueRequest], now: datetime | None = None
    ) -> list[TaskHandle[Any]]:
        """Insert many runs (COPY or one statement per 1,000); one handle per request, in order.
        ``now`` is the rows' ``created_at`` (default: the current time)."""
        from .. import store

        if not requests:
            return []
        if now is None:
            now = datetime.now(UTC)
        try:
            found = store.for_connection(self.connection).queue.insert_runs(requests, now)
        except Exception as exc:
            from ..store.readiness import MIGRATE_HINT, is_missing_schema_error

            if not is_missing_schema_error(exc):
                raise
            raise ConfigurationError(
                f"DatabaseBackend cannot store the run: the django_generic_tasks tables are "
                f"missing or out of date in database {self.database!r}. {MIGRATE_HINT}."
            ) from exc
        return [
            self.handle_for(request, store.waiting_status(request.run_after, now))
            if run is None
            else run.to_handle(self)
            for request, run in zip(requests, found, strict=True)
        ]

    def start_workflow(self, plan: Plan) -> None:
        """Write the workflow, its first runs and their membership in the caller's
        transaction (one of its own outside one)."""
        from django.db import transaction

        from .. import store

        runs = store.for_connection(self.connection)
        with transaction.atomic(using=self.database):
            runs.queue.workflows.create(plan, runs.queue, datetime.now(UTC))

    def join_batch(
        self, batch_id: str, requests: Sequence[EnqueueRequest], first: int
    ) -> list[TaskHandle[Any]]:
        """Insert runs that join batch ``batch_id``, with their membership, in one
        transaction (the caller's, inside one)."""
        from django.db import transaction

        from .. import store

        runs = store.for_connection(self.connection)
        now = datetime.now(UTC)
        with transaction.atomic(using=self.database):
            found = runs.queue.workflows.join(batch_id, requests, first, runs.queue)
        return [
            self.handle_for(request, store.waiting_status(request.run_after, now))
            if run is None
            else run.to_handle(self)
            for request, run in zip(requests, found, strict=True)
        ]

    def close_batch(self, batch_id: str, count: int) -> None:
        """Batch ``batch_id``'s block ended after ``count`` starts."""
        from django.db import transaction

        from .. import store

        runs = store.for_connection(self.connection)
        with transaction.atomic(using=self.database):
            runs.queue.workflows.close(batch_id, count, runs.queue)

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        """Batch ``batch_id``'s runs by status."""
        from .. import store

        return store.for_connection(self.connection).queue.workflows.counts(batch_id)

    def workflow_of(self, run_id: str) -> tuple[str, str, int, str] | None:
        """The workflow run ``run_id`` belongs to, as stored."""
        from .. import store

        return store.for_connection(self.connection).queue.workflows.workflow_of(run_id)

    def workflow_state(self, workflow_id: str) -> WorkflowState:
        """The workflow ``workflow_id`` as stored (``RunNotFoundError`` when there is none)."""
        from .. import store

        return store.for_connection(self.connection).queue.workflows.state(workflow_id)

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """A fresh handle for ``run_id``; ``RunNotFoundError`` when there is no such run."""
        from .. import store
        from ..store.schema import parse_run_id

        if parse_run_id(run_id) is None:
            raise RunNotFoundError(f"{run_id!r} is not a task run id.")
        run = store.for_connection(self.connection).queue.get(run_id)
        if run is None:
            raise RunNotFoundError(f"There is no task run {run_id!r}.")
        return run.to_handle(self)

    def run_params(self, run_id: str) -> Any:
        """The params ``run_id`` was started with, as JSON data (``None``: no such run)."""
        from .. import store
        from ..store.schema import parse_run_id

        pk = parse_run_id(run_id)
        if pk is None:
            return None
        rows = store.for_connection(self.connection).queue.runs.filter(pk=pk)
        return rows.values_list("params", flat=True).first()

    @property
    def keeps_nul_characters(self) -> bool:
        """Whether the run store keeps NUL in params and keys (PostgreSQL does not)."""
        return bool(self.connection.vendor != "postgresql")

    def finish_notices(self) -> FinishNotices | None:
        """On PostgreSQL, what wakes ``wait()`` when a run ends (``LISTEN/NOTIFY``); ``None``
        elsewhere (``wait()`` polls)."""
        if self.connection.vendor != "postgresql":
            return None
        from ..store.finish_notices import listener_for

        return listener_for(self.database)

    def cancel_run(self, run_id: str) -> None:
        """Cancel ``run_id``: a waiting run at once, a running one within a heartbeat
        (``Task.check_cancelled()``); a finished run is left as it is."""
        from datetime import UTC, datetime

        from .. import store
        from ..store.schema import parse_run_id

        pk = parse_run_id(run_id)
        if pk is None:
            raise RunNotFoundError(f"{run_id!r} is not a task run id.")
        operations = store.for_connection(self.connection).operations
        operations.cancel(operations.runs.filter(pk=pk), datetime.now(UTC))

    def progress_sink(self) -> ProgressSink:
        """The worker's sink: at most one progress write per run every
        ``PROGRESS_WRITE_EVERY`` seconds, the latest when the attempt ends."""
        from ..store.progress import database_writer

        return database_writer(self.database)

    def pause(self, kind: str, name: str) -> bool:
        """Pause a queue or task: the workers claim none of its runs until ``resume()``
        (every worker within ``store.flow.PAUSE_REFRESH`` seconds; runs already running go
        on)."""
        from .. import store

        return store.for_connection(self.connection).queue.flow.pause(kind, name, _now())

    def resume(self, kind: str, name: str) -> bool:
        """Resume a paused queue or task; its waiting runs are claimed again."""
        from .. import store

        return store.for_connection(self.connection).queue.flow.resume(kind, name)

    def paused(self) -> list[tuple[str, str, Any]]:
        """``(kind, name, since)`` of the paused queues and tasks, oldest first."""
        from .. import store

        return store.for_connection(self.connection).queue.flow.paused()

    def check(self) -> list[CheckMessage]:
        """The app must be installed, and the database alias configured and supported
        (``checks.check_migrations`` reports unapplied migrations: it needs the database)."""
        from django.apps import apps
        from django.conf import settings

        from .. import store

        messages: list[CheckMessage] = []
        if not apps.is_installed("django_generic_tasks"):
            messages.append(
                CheckError(
                    "DatabaseBackend needs 'django_generic_tasks' in INSTALLED_APPS.",
                    hint="Add it, then run `python manage.py migrate`.",
                    id=CheckId.DATABASE_APP_NOT_INSTALLED,
                )
            )
        if self.database not in settings.DATABASES:
            messages.append(
                CheckError(
                    f"DatabaseBackend's database {self.database!r} is not in DATABASES.",
                    id=CheckId.DATABASE_ALIAS_UNKNOWN,
                )
            )
        else:
            try:
                store.for_connection(self.connection)
            except store.UnsupportedDatabaseError as exc:
                messages.append(CheckError(str(exc), id=CheckId.DATABASE_UNSUPPORTED))
        return messages


def _now() -> datetime:
    return datetime.now(UTC)
