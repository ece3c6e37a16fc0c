"""System checks of ``CeleryBackend``: the app, Redis's visibility timeout, queue routing and
task names taken by another Celery task.

A run is sent to the Celery queue its task's queue maps to (``CeleryBackend.celery_queue``); a
worker consumes the queues it is started with (``-Q``) or, without ``-Q``, the app's
``task_queues`` or ``task_default_queue``. A Celery queue that none of ``task_queues``,
``task_routes`` or ``task_default_queue`` names is most likely one no worker consumes, so runs
sent there wait for ever: W402 names such queues.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.checks import CheckMessage, Error, Warning

from ..check_ids import CheckId

if TYPE_CHECKING:
    from .celery import CeleryBackend


def known_queues(app: Any) -> set[str]:
    """The Celery queue names the app's configuration mentions (``task_default_queue``,
    ``task_queues``, and the queues of dict-shaped ``task_routes``)."""
    conf = app.conf
    names = {str(conf.task_default_queue)}
    for queue in conf.task_queues or ():
        names.add(str(getattr(queue, "name", queue)))
    routes = conf.task_routes
    for table in routes if isinstance(routes, list | tuple) else [routes]:
        if isinstance(table, dict):
            names.update(_route_queues(table.values()))
    return names


def _route_queues(routes: Iterable[Any]) -> set[str]:
    names: set[str] = set()
    for route in routes:
        queue = route.get("queue") if isinstance(route, dict) else route
        name = getattr(queue, "name", queue)
        if isinstance(name, str) and name:
            names.add(name)
    return names


def check_queues(backend: CeleryBackend) -> list[CheckMessage]:
    """W402 for each task whose queue maps to a Celery queue the app's configuration does not
    name; E402 for a task whose name is already a Celery task that is not ours."""
    from ..core.registry import registry

    app = backend.app
    known = known_queues(app)
    messages: list[CheckMessage] = []
    unrouted: dict[str, list[str]] = {}
    for task_class in registry:
        celery_queue = backend.celery_queue(task_class.queue)
        if celery_queue not in known:
            unrouted.setdefault(celery_queue, []).append(task_class.name)
        existing = app.tasks.get(task_class.name)
        if existing is not None and not getattr(existing, "dgt_bridge", False):
            messages.append(
                Error(
                    f"Task {task_class.name!r} has the name of another Celery task "
                    f"({type(existing).__module__}): its runs would run that task's body.",
                    hint="Set a distinct `name` on the task class.",
                    id=CheckId.CELERY_TASK_NAME_TAKEN,
                )
            )
    for celery_queue, names in sorted(unrouted.items()):
        mapped_from = sorted({t.queue for t in registry if t.name in names})
        messages.append(
            Warning(
                f"Tasks {', '.join(sorted(names))} are sent to the Celery queue "
                f"{celery_queue!r} (from task queue {', '.join(map(repr, mapped_from))}), "
                "which neither task_default_queue "
                f"({app.conf.task_default_queue!r}), task_queues nor task_routes names: a "
                "worker started without -Q never receives them.",
                hint=f"Start workers with -Q {celery_queue} and declare it in the Celery app's "
                f"task_queues, set task_default_queue = {celery_queue!r}, or map the task "
                f"queue with TASKS_BACKEND_OPTIONS['queues'] = {{{mapped_from[0]!r}: "
                "'<celery queue>'}.",
                id=CheckId.CELERY_QUEUE_UNROUTED,
            )
        )
    return messages
