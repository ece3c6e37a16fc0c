"""Django system checks: the settings are valid and the backend is usable.

| id | problem |
| --- | --- |
| ``django_generic_tasks.E001`` | invalid ``TASKS_*`` settings: a bad path, an unknown option... |
| ``django_generic_tasks.E002`` | the backend needs an optional dependency that is not installed |
| ``django_generic_tasks.E003`` | a task's ``queue`` is not in ``TASKS_QUEUES`` |
| ``django_generic_tasks.W001`` | (``--deploy``) ``DEBUG`` off, ``ImmediateBackend`` in use |
| ``django_generic_tasks.W101`` | (``--database``) migrations of this app are not applied where |
|  | ``DatabaseBackend`` stores runs |
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .check_ids import CheckId
from .exceptions import ConfigurationError, MissingDependencyError

CONFIG_HINT = "See the Settings page of the django-generic-tasks documentation."
MISSING_HINT = (
    "Install the extra named in the message, e.g. pip install 'django-generic-tasks[celery]', "
    "or choose another TASKS_BACKEND."
)


@register(Tags.compatibility)
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report invalid ``TASKS_*`` settings or backend, then the backend's own checks.

    It uses the backend ``start()`` would use (settings changes reset it), without closing it.
    """
    from .conf import get_backend

    try:
        backend = get_backend()
    except MissingDependencyError as exc:
        hint = getattr(exc, "hint", None) or MISSING_HINT
        return [Error(str(exc), hint=hint, id=CheckId.BACKEND_DEPENDENCY_MISSING)]
    except ConfigurationError as exc:
        hint = getattr(exc, "hint", None) or CONFIG_HINT
        return [Error(str(exc), hint=hint, id=CheckId.BACKEND_INVALID)]
    return list(backend.check())


@register(Tags.compatibility, deploy=True)
def check_production_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With ``DEBUG`` off, warn that ``ImmediateBackend`` runs every task inline in the caller."""
    from django.conf import settings

    from .backends.immediate import ImmediateBackend
    from .conf import get_backend

    if settings.DEBUG:
        return []
    try:
        backend = get_backend()
    except ConfigurationError:
        return []  # check_backend reports it
    if not isinstance(backend, ImmediateBackend):
        return []
    why = (
        "TASKS_BACKEND is ImmediateBackend"
        if getattr(settings, "TASKS_BACKEND", None) is not None
        else "TASKS_BACKEND is not set, so the default ImmediateBackend is in effect"
    )
    return [
        Warning(
            f"{why}: start() runs each task inline, in the caller's request or process, and "
            "waits for it to finish.",
            hint="Set TASKS_BACKEND to a background backend (e.g. "
            "'django_generic_tasks.backends.DatabaseBackend' with `manage.py tasks_worker`), "
            "or silence django_generic_tasks.W001 if running inline is intended.",
            id=CheckId.BACKEND_IMMEDIATE_WITHOUT_DEBUG,
        )
    ]


@register(Tags.compatibility)
def check_task_queues(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With ``TASKS_QUEUES`` set, every registered task's ``queue`` must be declared in it."""
    from .conf import get_settings
    from .core.registry import registry

    try:
        declared = get_settings().queues
    except ConfigurationError:
        return []  # check_backend reports it
    if declared is None:
        return []
    return [
        Error(
            f"Task {task.name!r} has queue = {task.queue!r}, which TASKS_QUEUES does not declare "
            f"(declared: {', '.join(declared)}).",
            hint="Fix the task's queue or add it to TASKS_QUEUES.",
            obj=task,
            id=CheckId.BACKEND_TASK_QUEUE_UNDECLARED,
        )
        for task in registry
        if task.queue not in declared
    ]


@register(Tags.database)
def check_migrations(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report this app's unapplied migrations on the database ``DatabaseBackend`` writes to.

    Tagged ``database``: it runs with ``check --database <alias>``, in ``migrate`` and in
    Django's test runner, never where the database may not exist yet; an unreachable database
    is left to the commands that need it.
    """
    from django.db import DatabaseError, connections

    from .conf import get_backend
    from .store.readiness import MIGRATE_HINT, describe_unapplied, unapplied_migrations

    try:
        backend = get_backend()
    except ConfigurationError:
        return []
    alias = backend.run_database  # the run store's database (DatabaseBackend)
    if alias is None or not databases or alias not in databases:
        return []
    try:
        pending = unapplied_migrations(connections[alias])
    except (DatabaseError, KeyError):
        return []
    if not pending:
        return []
    return [
        Warning(
            describe_unapplied(pending, alias),
            hint=f"{MIGRATE_HINT}: until then start() fails and tasks_worker waits.",
            id=CheckId.DATABASE_MIGRATIONS_UNAPPLIED,
        )
    ]
