"""``Task[Params, Result]``: the base class users subclass, its options, and ``start()``."""

from __future__ import annotations

import random
import typing
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, get_args, get_origin

from pydantic import BaseModel, TypeAdapter
from typing_extensions import TypeVar

from ..conf import get_backend
from ..exceptions import TaskDefinitionError
from .context import RunContext, started_at_of
from .dispatch import submit, submit_many
from .enqueue import EnqueueRequest
from .flow import RateLimit, check_flow_options
from .modelref import has_model_refs
from .params import validate_params
from .registry import registry
from .running import services

HOOKS = ("on_success", "on_failure", "on_discard", "on_retry")
"""The lifecycle hooks of ``Task``, in no particular order."""

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..execution.attempts import RetryPolicy
    from ..execution.steps import Step
    from .handles import TaskHandle
    from .schedule import Schedule
    from .status import ErrorInfo


P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", default=Any)  # a default needs typing_extensions on Python 3.12


class Task(Generic[P, R]):
    """A unit of background work whose parameters are the Pydantic model ``P`` and whose
    ``run()`` returns an ``R`` (optional; default ``Any``).

    Subclass ``Task[MyParams]`` (or ``Task[MyParams, MyResult]``) and implement ``run()``
    (plain or ``async def``). Call ``run()`` to run it now, or ``start()`` to hand it to the
    configured backend. Options below are class attributes; override them on your task class.
    """

    name: ClassVar[str]
    """Stable wire name used by backends and the HTTP endpoint. Default ``module.QualName``."""
    params_model: ClassVar[type[BaseModel]]
    """The Pydantic model of this task's params, found from the ``Task[...]`` type argument."""
    result_type: ClassVar[Any] = Any
    """What ``run()`` returns: the second ``Task[P, R]`` type argument (``Any`` if not given).
    Return values are validated against it; ``handle.result`` is decoded back into it."""
    abstract: ClassVar[bool] = False
    """Set ``abstract = True`` on a base class that is not itself a runnable task."""

    queue: ClassVar[str] = "default"
    """Queue the task is started on unless ``start(queue=...)`` says otherwise."""
    priority: ClassVar[int] = 0
    """Higher runs first, on backends that support priorities. Range -100..100."""
    max_attempts: ClassVar[int] = 1
    """How many times a run is attempted in all (1 = no retries)."""
    retry_on: ClassVar[tuple[type[BaseException], ...]] = (Exception,)
    """Exceptions that cause a retry while attempts remain."""
    discard_on: ClassVar[tuple[type[BaseException], ...]] = ()
    """Exceptions that end the run as ``discarded``: no retry, not an error."""
    missing_models_fail: ClassVar[bool] = False
    """Whether a ``ModelRef`` whose row no longer exists fails the run (retried per policy)
    instead of discarding it (the default)."""
    backoff_base: ClassVar[float] = 1.0
    """Seconds to wait before the first retry."""
    backoff_factor: ClassVar[float] = 2.0
    """Each further retry waits this many times longer."""
    backoff_max: ClassVar[float] = 3600.0
    """Upper bound of the wait between two attempts, in seconds."""
    backoff_jitter: ClassVar[bool] = True
    """Randomise each wait between half and all of its value, so retries do not stampede."""
    retry_policy: ClassVar[RetryPolicy | None] = None
    """Decides whether a failed attempt is retried, and when (``decide()`` returns a
    ``Decision``); ``None``: ``retry_on``, ``max_attempts`` and the ``backoff_*`` options do."""
    step_save_every: ClassVar[float] = 0.5
    """Seconds between two saves of an iterating step's cursor (``self.step()``): at most
    this long of work is done again after a crash; each save is one write of the run."""
    timeout: ClassVar[float | None] = None
    """Seconds a run may take before it fails with ``TaskTimeoutError``; ``None`` = no limit."""
    schedules: ClassVar[Sequence[Schedule]] = ()
    """``tasks.Schedule`` values: when the task runs by itself (not inherited by subclasses)."""
    api_exposed: ClassVar[bool | None] = None
    """Whether the tasks API router gives this task endpoints: ``False`` keeps it off (404,
    absent from the OpenAPI document); ``None`` follows ``TASKS_API_EXPOSED_BY_DEFAULT``."""
    concurrency_limit: ClassVar[int | None] = None
    """At most this many runs with one ``concurrency_key()`` run at once, across every
    worker; runs over it wait for a slot (``None``: no limit). Backends that cannot honour it
    refuse ``start()`` with ``UnsupportedOptionError``."""
    rate_limit: ClassVar[str | None] = None
    """At most this many runs with one ``rate_limit_key()`` start per period, across every
    worker: ``"600/m"``, ``"10/s"``, ``"1000/h"`` (``None``: no limit). A run over it is made
    due when it may start; that wait is not an attempt."""
    api_accepts_key: ClassVar[bool] = False
    """Whether HTTP callers may pass ``key`` to ``POST <task>/start``. Keys are scoped per task
    and per caller (``api_key_scope()``); the same key with other params answers 409."""

    params: P

    _has_hooks: ClassVar[bool] = False
    """Whether the class overrides a lifecycle hook (the execution path skips them if not)."""
    _has_model_refs: ClassVar[bool] = False
    """Whether the params hold ``ModelRef`` fields (the execution path loads them if so)."""
    _rate: ClassVar[RateLimit | None] = None
    """``rate_limit`` parsed (set at class definition)."""
    _result_adapter: ClassVar[TypeAdapter[Any] | None] = None
    """Validates and serialises return values; ``None`` for ``Any`` (nothing to check)."""

    def __init__(self, params: P | Mapping[str, Any]) -> None:
        if type(params) is self.params_model:  # already validated (the common, hot case)
            self.params = params
        else:
            self.params = validate_params(self.params_model, params)  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._has_hooks = any(getattr(cls, hook) is not getattr(Task, hook) for hook in HOOKS)
        if cls.__dict__.get("abstract", False):
            return
        params_model, result_type = _find_type_arguments(cls)
        if params_model is None:
            if getattr(cls, "__parameters__", ()):
                return  # a generic intermediate base such as ``class Base(Task[P])``
            raise TaskDefinitionError(
                f"{cls.__module__}.{cls.__qualname__} does not say what its params are: subclass "
                f"Task[YourParamsModel] with a pydantic BaseModel, or set `abstract = True`."
            )
        cls.params_model = params_model
        _set_result_type(cls, result_type)
        cls._has_model_refs = has_model_refs(params_model)
        cls.abstract = False
        if "name" not in cls.__dict__:
            cls.name = f"{cls.__module__}.{cls.__qualname__}"
        _check_options(cls)
        if cls.__dict__.get("schedules"):  # validated now; classes without any pay nothing
            from .schedule import resolve_all

            cls._schedule_entries = resolve_all(cls, cls.__dict__["schedules"])  # type: ignore[attr-defined]
        registry.register(cls)

    @property
    def context(self) -> RunContext:
        """The run this attempt belongs to (run id, attempt, queue...; see ``RunContext``).

        Set by the execution path on every backend and the HTTP endpoint; when ``run()`` is
        called by hand, a fresh run id and attempt 1.
        """
        context = self.__dict__.get("_run_context")
        if type(context) is RunContext:
            return context
        cls = type(self)
        if context is None:  # run() called by hand
            from .status import new_run_id

            run_id = new_run_id()
            context = RunContext(
                run_id, 1, cls.max_attempts, cls.queue, started_at_of(run_id), "direct"
            )
        else:  # the Attempt that execution runs: its RunContext is built on first use (rare)
            context = RunContext(
                context.run_id,
                context.attempt,
                context.max_attempts or cls.max_attempts,
                context.queue or cls.queue,
                started_at_of(context.run_id),
                context.backend,
            )
        self._run_context = context
        return context

    def run(self) -> R | Awaitable[R]:
        """Do the work and return an ``R``. Override this; it may be ``async def``."""
        raise NotImplementedError(f"{type(self).__name__}.run() is not implemented.")

    def report_progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """Tell how far ``run()`` has got: ``done`` of ``total`` (``None``: unknown).

        Fires ``task_progress`` on every backend; backends with ``supports_progress``
        (``DatabaseBackend``) also store it on the run, for ``handle.refresh().progress``,
        ``GET runs/<id>`` and the admin (at most one write per run every 0.5 s, the latest
        report always kept when the attempt ends). Bad values raise ``InvalidOptionError``.
        """
        services.report_progress(self, done, total, message)

    @property
    def cancel_requested(self) -> bool:
        """Whether this run was asked to stop (``handle.cancel()``, the admin, its timeout).

        Seen within a heartbeat on ``DatabaseBackend``; always false on backends that cannot
        cancel running runs.
        """
        if self.__dict__.get("_cancel_requested"):  # this attempt timed out
            return True
        return services.cancel_requested(self.context.run_id)

    def step(self, name: str) -> Step:
        """A step of this run that resumes: ``for step in self.step("fetch"):`` runs its
        body once, and not again on a later attempt of the run once completed; inside it
        ``step.cursor`` (``None`` the first time) and ``step.advance(cursor)`` let an
        iterating step resume from its last saved cursor (``step_save_every``) after a
        retry, a deploy or a kill. ``with self.step(name) as step:`` runs its body on every
        attempt (``step.done``: completed before). Backends without a step store refuse it
        (``UnsupportedOptionError``)."""
        step: Step = services.step(self, name)
        return step

    def check_cancelled(self) -> None:
        """Raise ``TaskCancelled`` if the run was asked to stop (ends it as ``cancelled``)."""
        if self.cancel_requested:
            from ..exceptions import TaskCancelled

            raise TaskCancelled(f"Run {self.context.run_id} of {type(self).name} was cancelled.")

    # Lifecycle hooks: called by the execution path once the attempt's outcome is decided,
    # before ``task_finished`` and before the backend records the outcome; an exception in one
    # is logged with the run id and changes nothing. Each may be ``async def``.

    def on_success(self, result: R) -> None:
        """Called once when the run succeeded, with ``run()``'s (validated) return value."""

    def on_failure(self, error: ErrorInfo) -> None:
        """Called once when the run failed for good (its last attempt, or an error that is not
        retried)."""

    def on_discard(self, error: ErrorInfo) -> None:
        """Called once when the run ended as discarded (an exception in ``discard_on``)."""

    def on_retry(self, error: ErrorInfo, retry_at: datetime | None) -> None:
        """Called after each failed attempt that the task's policy retries, at ``retry_at``."""

    # Flow control keys: called at start(), only when the class sets the limit.

    def concurrency_key(self) -> str:
        """Which runs share the ``concurrency_limit`` (default: every run of this task).

        Return e.g. ``f"account:{self.params.account_id}"`` for a limit per account."""
        return type(self).name

    def rate_limit_key(self) -> str:
        """Which runs share the ``rate_limit`` (default: every run of this task)."""
        return type(self).name

    # HTTP hooks: called by the tasks API router only (``django_generic_tasks.api``).

    def api_authorize(self, request: Any) -> bool:
        """Whether the HTTP caller of ``request`` may run or start this task with these params.

        Called after the params validated and their ``ModelRef`` rows loaded, before anything
        runs or starts (``POST <task>`` and ``POST <task>/start``; never for a push queue's
        delivery). ``request.user`` / ``request.auth`` say who calls. ``False`` answers 403, as
        does a ``ModelRef`` row that does not exist. ``GET runs/<id>`` asks it too, with the
        run's params (404 when refused). Default: allowed.
        """
        return True

    def api_key_scope(self, request: Any) -> str | None:
        """Whose idempotency keys ``request`` uses (``POST <task>/start?key=``).

        ``None`` (the default): the caller's identity as the auth gives it: the auth's return
        value (a user, an OIDC token's subject or e-mail, a string), else the session user,
        else one scope for all anonymous callers. Return a string to choose it yourself (one
        per tenant, say); the same string for every caller shares keys among them.
        """
        return None

    def start(
        self,
        *,
        delay: timedelta | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        key: str | None = None,
        on_commit: bool = True,
        backend: Backend | None = None,
    ) -> TaskHandle[R]:
        """Hand this task to a backend (``TASKS_BACKEND`` unless given); return its handle.

        Inside ``transaction.atomic()`` the hand-over waits for the commit and never happens on
        rollback, unless ``on_commit=False``. Options the backend cannot honour raise
        ``UnsupportedOptionError`` here rather than being dropped.
        """
        request = EnqueueRequest.for_task(
            self, delay=delay, eta=eta, queue=queue, priority=priority, key=key
        )
        return submit(backend or get_backend(), request, on_commit=on_commit)

    @classmethod
    def start_many(
        cls,
        params: Iterable[P | Mapping[str, Any]],
        *,
        delay: timedelta | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        on_commit: bool = True,
        backend: Backend | None = None,
    ) -> list[TaskHandle[R]]:
        """Start one run per params object, in bulk where the backend can; one handle each."""
        requests = [
            EnqueueRequest.for_task(cls(p), delay=delay, eta=eta, queue=queue, priority=priority)
            for p in params
        ]
        return submit_many(backend or get_backend(), requests, on_commit=on_commit)

    @classmethod
    def handle(cls, run_id: str, *, backend: Backend | None = None) -> TaskHandle[R]:
        """The handle of this task's run ``run_id``, typed: ``tasks.get_handle()`` that also
        checks the run is one of this task (``RunNotFoundError`` otherwise)."""
        from ..exceptions import RunNotFoundError
        from .dispatch import get_handle

        found = get_handle(run_id, backend=backend)
        if found.name != cls.name:
            raise RunNotFoundError(f"Run {run_id!r} is a run of {found.name}, not of {cls.name}.")
        return found

    @classmethod
    def backoff(cls, attempt: int) -> timedelta:
        """How long to wait before the attempt after ``attempt`` (1-based)."""
        seconds = min(cls.backoff_base * cls.backoff_factor ** (attempt - 1), cls.backoff_max)
        if cls.backoff_jitter:
            seconds = random.uniform(seconds / 2, seconds)
        return timedelta(seconds=seconds)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.params!r}>"


def _find_type_arguments(cls: type) -> tuple[type[BaseModel] | None, Any]:
    """The params model and result type that ``cls`` gives to ``Task``, following generic
    intermediate bases.

    ``class Base[X, P: BaseModel](Task[P])`` then ``class C(Base[Other, Params])`` resolves to
    ``Params``: each generic base's type parameters are mapped to the arguments it was given.
    """
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            found = _resolve_arguments(base, {})
            if found is not None:
                return found
    return None, Any


def _resolve_arguments(alias: Any, bindings: dict[Any, Any]) -> tuple[type[BaseModel], Any] | None:
    origin = get_origin(alias)
    if not (isinstance(origin, type) and issubclass(origin, Task)):
        return None
    args = [bindings.get(arg, arg) for arg in get_args(alias)]
    if origin is Task:
        params = args[0] if args else None
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            return None
        result = args[1] if len(args) > 1 else Any
        return params, Any if isinstance(result, typing.TypeVar) else result
    inner = dict(zip(getattr(origin, "__parameters__", ()), args, strict=False))
    for klass in origin.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            found = _resolve_arguments(base, inner)
            if found is not None:
                return found
    return None


def _set_result_type(cls: type[Task[Any, Any]], result_type: Any) -> None:
    cls.result_type = result_type
    if result_type is Any or result_type is object:
        cls._result_adapter = None
        return
    try:
        cls._result_adapter = TypeAdapter(result_type)
    except Exception as exc:  # pydantic raises several kinds for types it cannot handle
        raise TaskDefinitionError(
            f"{cls.__module__}.{cls.__qualname__} returns {result_type!r}, which Pydantic "
            f"cannot validate or serialise as JSON: {exc}"
        ) from exc


def _check_options(cls: type[Task[Any]]) -> None:
    where = f"{cls.__module__}.{cls.__qualname__}"

    def fail(option: str, requirement: str) -> TaskDefinitionError:
        value = getattr(cls, option)
        return TaskDefinitionError(f"{where}.{option} must be {requirement} (got {value!r}).")

    def is_number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not isinstance(cls.name, str) or not cls.name or "/" in cls.name:
        raise fail("name", "a non-empty string without '/'")
    if not isinstance(cls.queue, str) or not cls.queue:
        raise fail("queue", "a non-empty string")
    if type(cls.max_attempts) is not int or cls.max_attempts < 1:
        raise fail("max_attempts", "an integer >= 1")
    if type(cls.priority) is not int or not -100 <= cls.priority <= 100:
        raise fail("priority", "an integer between -100 and 100")
    if cls.timeout is not None and (not is_number(cls.timeout) or cls.timeout <= 0):
        raise fail("timeout", "a positive number of seconds or None")
    if not is_number(cls.backoff_base) or cls.backoff_base < 0:
        raise fail("backoff_base", "a number >= 0")
    if not is_number(cls.backoff_factor) or cls.backoff_factor < 1:
        raise fail("backoff_factor", "a number >= 1")
    if not is_number(cls.backoff_max) or cls.backoff_max < 0:
        raise fail("backoff_max", "a number >= 0")
    check_flow_options(cls)
    for option in ("retry_on", "discard_on"):
        value = getattr(cls, option)
        if not isinstance(value, tuple) or not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in value
        ):
            raise fail(option, "a tuple of exception classes")
