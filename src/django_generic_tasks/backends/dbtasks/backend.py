"""``DatabaseTaskBackend``: a ``django.tasks`` backend whose runs are this project's runs.

``TASKS = {"default": {"BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend",
"QUEUES": [...], "OPTIONS": {"database": "default"}}}``. ``enqueue()`` writes one ``TaskRun``
row in the caller's transaction through ``DatabaseBackend`` (so a rollback leaves no run);
``manage.py tasks_worker`` runs it beside this project's own tasks (``runs.py``); ``get_result()``
reads the row back as a ``TaskResult`` (``results.py``). Needs Django >= 6.0.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.core.checks import CheckMessage

from ...exceptions import MissingDependencyError

try:
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskResult, TaskResultStatus
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued
    from django.utils.json import normalize_json
except ImportError as exc:  # Django < 6.0
    raise MissingDependencyError(
        "DatabaseTaskBackend is a backend for django.tasks, the tasks framework of Django 6.0 "
        "and later: upgrade Django (pip install 'django>=6.0')."
    ) from exc

from ...core.context import started_at_of
from ...core.dispatch import submit
from ...core.enqueue import EnqueueRequest
from ...core.handles import TaskHandle
from ...core.status import new_run_id
from ..database import DatabaseBackend
from .results import is_django_task_run, task_result
from .runs import moment, task_name_of

__all__ = ["DatabaseTaskBackend"]

OPTIONS = frozenset({"database"})
"""The keys ``OPTIONS`` may have."""
NAME_MAX, QUEUE_MAX = 255, 100
"""The run row's longest task name and queue name."""


class _RunWriter(DatabaseBackend):
    """``DatabaseBackend`` whose rows are enqueued at the instant their run id carries: the
    ``enqueued_at`` the ``TaskResult`` of ``enqueue()`` shows is the stored one."""

    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Insert one run, created at its id's instant."""
        return self.enqueue_many([request], now=started_at_of(request.run_id))[0]


class DatabaseTaskBackend(BaseTaskBackend):
    """Stores ``django.tasks`` runs as ``TaskRun`` rows; ``manage.py tasks_worker`` runs them.

    ``OPTIONS``: ``database``, the connection alias of the run store (default ``"default"``).
    Runs are attempted once, as Django's ``Task`` has no retry options; a run whose worker
    died is run again (crash safety), which counts in ``attempts``.
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    # What the capability table (``backends.capabilities``) shows for Django task runs here.
    supports_key = False
    supports_results = True
    supports_retries = False
    supports_progress = False
    supports_cancel = False
    supports_workflows = False
    supports_continuations = False
    concurrency_limits = ""
    rate_limits = ""
    supports_pause = True
    enqueues_in_transaction = True
    crash_safe = True
    needs_server = "your database, `tasks_worker`"
    capability_notes: ClassVar[dict[str, str]] = {
        "supports_retries": "Django's `Task` has none; a lost worker's run runs again",
        "supports_cancel": "waiting runs, from the admin",
        "concurrency_limits": "Django's `Task` has no such option",
        "rate_limits": "Django's `Task` has no such option",
        "supports_pause": "its queues, on the same worker",
    }

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        if not isinstance(self.options, dict):
            raise InvalidTaskBackend(f"TASKS[{alias!r}]['OPTIONS'] must be a dict.")
        unknown = sorted(set(self.options) - OPTIONS)
        if unknown:
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS'] has unknown keys {unknown}; "
                f"DatabaseTaskBackend takes {sorted(OPTIONS)}."
            )
        database = self.options.get("database", "default")
        if not isinstance(database, str) or not database:
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS']['database'] must be a connection alias."
            )
        self.database = database
        self.runs = _RunWriter(database)
        """Our ``DatabaseBackend`` on the same database: what writes the rows."""

    def validate_task(self, task: Any) -> None:
        """Django's checks, and names that fit the run row (task path, queue)."""
        super().validate_task(task)
        if len(task_name_of(task.module_path)) > NAME_MAX:
            raise InvalidTask(
                f"Task path {task.module_path!r} is too long for the run store "
                f"(at most {NAME_MAX - len(task_name_of(''))} characters)."
            )
        if not isinstance(task.queue_name, str) or not 0 < len(task.queue_name) <= QUEUE_MAX:
            raise InvalidTask(f"Queue names must be 1 to {QUEUE_MAX} characters.")

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """Write one run in the caller's transaction; return its ``TaskResult`` (READY)."""
        self.validate_task(task)
        args, kwargs = normalize_json(args), normalize_json(kwargs)
        run_after = moment(task.run_after)
        call: dict[str, Any] = {"args": args, "kwargs": kwargs, "backend": self.alias}
        if task.priority:
            call["priority"] = task.priority
        if run_after is not None:
            call["run_after"] = run_after.isoformat()
        request = EnqueueRequest(
            new_run_id(),
            task_name_of(task.module_path),
            json.dumps(call, separators=(",", ":")),
            task.queue_name,
            task.priority,
            run_after,
            None,
            1,
            None,
        )
        submit(self.runs, request, on_commit=False)
        result: Any = TaskResult(
            task=task,
            id=request.run_id,
            status=TaskResultStatus.READY,
            enqueued_at=started_at_of(request.run_id),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: Any) -> Any:
        """The ``TaskResult`` of run ``result_id``; ``TaskResultDoesNotExist`` when there is no
        such run of a Django task."""
        from ... import store

        run = None
        if isinstance(result_id, str):
            run = store.for_connection(self.runs.connection).queue.get(result_id)
        if run is None or not is_django_task_run(run):
            raise TaskResultDoesNotExist(result_id)
        return task_result(run)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        """``DatabaseBackend``'s checks on the run store's database."""
        return self.runs.check()

    def __repr__(self) -> str:
        return f"<DatabaseTaskBackend alias={self.alias!r} database={self.database!r}>"
