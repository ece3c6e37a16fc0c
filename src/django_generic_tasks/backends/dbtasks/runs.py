"""What ``tasks_worker`` runs for a Django ``@task`` function: one task class per function.

A run of a Django task is a ``TaskRun`` whose task name is ``django.tasks:<module path>`` and
whose params are the call (``DjangoCall``). The registry finds its class through the resolver
installed here (``install()``, from the app's ``ready()``): the first run of a function imports
it, checks it is a ``django.tasks.Task`` and makes its class (sync or async ``run()`` as the
function is), which the worker, its leases, timeouts, tracing and hooks then treat like any
task. ``run()`` calls the function the way Django's backends do: with a ``TaskContext`` when it
``takes_context``, sending ``task_started`` / ``task_finished``, its return value normalised to
JSON (a value that has none fails the run with ``TypeError``).
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime
from inspect import iscoroutinefunction
from traceback import format_exception
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ...core.registry import registry
from ...core.task import Task
from ...exceptions import UnknownTaskError

__all__ = ["PREFIX", "DjangoCall", "install", "resolve", "task_name_of"]

PREFIX = "django.tasks:"
"""What the task name of every Django task run starts with (then the function's module path)."""

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
"""This process, as the ``worker_ids`` of the ``TaskResult`` a running function sees (the
run's stored result names the worker itself, ``host:pid:suffix``)."""


class DjangoCall(BaseModel):
    """The params of a Django task run: the call, and the ``Task`` options it was enqueued with."""

    model_config = ConfigDict(extra="forbid")

    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    backend: str = "default"
    """The ``TASKS`` alias it was enqueued through."""
    priority: int = 0
    run_after: datetime | None = None
    """``Task.run_after`` as given (``None``: not deferred)."""


def task_name_of(module_path: str) -> str:
    """The run task name of the Django task function ``module_path``."""
    return PREFIX + module_path


def _task_with_options(run: Any) -> Any:
    """The ``django.tasks.Task`` of this run, with the options it was enqueued with."""
    task, call = type(run).django_task, run.params
    queue = run.context.queue
    if (
        call.priority != task.priority
        or queue != task.queue_name
        or call.backend != task.backend
        or call.run_after is not None
    ):
        return task.using(
            priority=call.priority,
            queue_name=queue,
            backend=call.backend,
            run_after=call.run_after,
        )
    return task


class _Call:
    """One call of a Django task function inside ``run()``: its ``TaskResult`` and signals."""

    __slots__ = ("dj", "result", "sender", "task")

    def __init__(self, run: Any) -> None:
        from django.tasks import base as dj

        self.dj = dj
        self.task = _task_with_options(run)
        context, call, now = run.context, run.params, datetime.now(UTC)
        self.result: Any = dj.TaskResult(
            task=self.task,
            id=context.run_id,
            status=dj.TaskResultStatus.RUNNING,
            enqueued_at=context.enqueued_at,
            started_at=now,
            finished_at=None,
            last_attempted_at=now,
            args=call.args,
            kwargs=call.kwargs,
            backend=call.backend,
            errors=[],
            worker_ids=[WORKER_ID] * context.attempt,
        )
        self.sender = type(self.task.get_backend())
        from django.tasks.signals import task_started

        task_started.send(sender=self.sender, task_result=self.result)

    def arguments(self, call: DjangoCall) -> list[Any]:
        """The positional arguments, the ``TaskContext`` first when the function takes it."""
        if self.task.takes_context:
            return [self.dj.TaskContext(task_result=self.result), *call.args]
        return call.args

    def succeeded(self, value: Any) -> Any:
        """Normalise the return value to JSON (``TypeError``/``ValueError`` when it has none:
        the run fails, as on Django's backends) and send ``task_finished``."""
        from django.tasks.signals import task_finished
        from django.utils.json import normalize_json

        value = normalize_json(value)
        setattr_ = object.__setattr__
        setattr_(self.result, "_return_value", value)
        setattr_(self.result, "finished_at", datetime.now(UTC))
        setattr_(self.result, "status", self.dj.TaskResultStatus.SUCCESSFUL)
        task_finished.send(sender=self.sender, task_result=self.result)
        return value

    def failed(self, exc: BaseException) -> None:
        """Record ``exc`` on the result and send ``task_finished`` (inside the ``except``
        block, so Django's log line carries the traceback)."""
        from django.tasks.signals import task_finished

        exc_type = type(exc)
        self.result.errors.append(
            self.dj.TaskError(
                exception_class_path=f"{exc_type.__module__}.{exc_type.__qualname__}",
                traceback="".join(format_exception(exc)),
            )
        )
        object.__setattr__(self.result, "finished_at", datetime.now(UTC))
        object.__setattr__(self.result, "status", self.dj.TaskResultStatus.FAILED)
        task_finished.send(sender=self.sender, task_result=self.result)


class DjangoFunctionRun(Task[DjangoCall]):
    """A run of a sync Django task function (one subclass per function: ``resolve()``)."""

    abstract = True
    api_exposed = False
    django_task: ClassVar[Any]
    """The ``django.tasks.Task`` this class runs."""

    def run(self) -> Any:
        """Call the function with the run's arguments; return its value as JSON data."""
        call = self.params
        step = _Call(self)
        try:
            return step.succeeded(step.task.func(*step.arguments(call), **call.kwargs))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too, as on Django's backends: the run fails
            step.failed(exc)
            raise


class AsyncDjangoFunctionRun(DjangoFunctionRun):
    """A run of an ``async def`` Django task function, awaited on the worker's event loop."""

    abstract = True

    async def run(self) -> Any:
        """Await the function with the run's arguments; return its value as JSON data."""
        call = self.params
        step = _Call(self)
        try:
            return step.succeeded(await step.task.func(*step.arguments(call), **call.kwargs))
        except Exception as exc:
            step.failed(exc)
            raise


for _base in (DjangoFunctionRun, AsyncDjangoFunctionRun):
    _base.params_model = DjangoCall

_classes: dict[str, type[DjangoFunctionRun]] = {}
_lock = threading.Lock()


def import_task(module_path: str) -> Any:
    """The ``django.tasks.Task`` at ``module_path``; ``UnknownTaskError`` when there is none."""
    from django.tasks import Task as DjangoTask
    from django.utils.module_loading import import_string

    try:
        found = import_string(module_path)
    except ImportError as exc:
        raise UnknownTaskError(
            f"The Django task {module_path!r} cannot be imported: {exc}"
        ) from exc
    if not isinstance(found, DjangoTask):
        raise UnknownTaskError(
            f"{module_path!r} is not a django.tasks Task (a function decorated with @task)."
        )
    return found


def resolve(name: str) -> type[Task[Any]]:
    """The task class of the run task name ``name`` (``django.tasks:<module path>``)."""
    found = _classes.get(name)
    if found is not None:
        return found
    task = import_task(name[len(PREFIX) :])
    base = AsyncDjangoFunctionRun if iscoroutinefunction(task.func) else DjangoFunctionRun
    with _lock:
        found = _classes.get(name)
        if found is None:
            found = type(
                base.__name__,
                (base,),
                {
                    "abstract": True,  # not registered: the resolver finds it
                    "__module__": __name__,
                    "__qualname__": f"{base.__qualname__}[{task.module_path}]",
                    "name": name,
                    "django_task": task,
                },
            )
            found.abstract = False
            _classes[name] = found
    return found


def forget() -> None:
    """Drop the classes made so far (tests that redefine a function)."""
    with _lock:
        _classes.clear()


def install() -> None:
    """Let the registry resolve Django task run names (the app's ``ready()`` calls it)."""
    registry.add_resolver(PREFIX, resolve)


def moment(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (naive values are in the current time zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        from django.utils import timezone

        value = timezone.make_aware(value)
    return value.astimezone(UTC)
