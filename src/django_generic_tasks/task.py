"""``Task[Params]``: the base class users subclass, its options, and ``start()``."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, get_args, get_origin

from pydantic import BaseModel

from .exceptions import TaskDefinitionError
from .params import validate_params
from .registry import registry

if TYPE_CHECKING:
    from .backends.base import Backend
    from .status import TaskHandle


class Task[P: BaseModel]:
    """A unit of background work whose parameters are the Pydantic model ``P``.

    Subclass ``Task[MyParams]`` and implement ``run()`` (plain or ``async def``). Call ``run()``
    to run it now, or ``start()`` to hand it to the configured backend. Options below are
    class attributes; override them on your task class.
    """

    name: ClassVar[str]
    """Stable wire name used by backends and the HTTP endpoint. Default ``module.QualName``."""
    params_model: ClassVar[type[BaseModel]]
    """The Pydantic model of this task's params, found from the ``Task[...]`` type argument."""
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
    backoff_base: ClassVar[float] = 1.0
    """Seconds to wait before the first retry."""
    backoff_factor: ClassVar[float] = 2.0
    """Each further retry waits this many times longer."""
    backoff_max: ClassVar[float] = 3600.0
    """Upper bound of the wait between two attempts, in seconds."""
    backoff_jitter: ClassVar[bool] = True
    """Randomise each wait between half and all of its value, so retries do not stampede."""
    timeout: ClassVar[float | None] = None
    """Seconds a run may take before it fails with ``TaskTimeoutError``; ``None`` = no limit."""

    params: P

    def __init__(self, params: P | Mapping[str, Any]) -> None:
        self.params = validate_params(self.params_model, params)  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        params_model = _find_params_model(cls)
        if params_model is None:
            if getattr(cls, "__parameters__", ()):
                return  # a generic intermediate base such as ``class Base(Task[P])``
            raise TaskDefinitionError(
                f"{cls.__module__}.{cls.__qualname__} does not say what its params are: subclass "
                f"Task[YourParamsModel] with a pydantic BaseModel, or set `abstract = True`."
            )
        cls.params_model = params_model
        if "name" not in cls.__dict__:
            cls.name = f"{cls.__module__}.{cls.__qualname__}"
        _check_options(cls)
        registry.register(cls)

    def run(self) -> Any:
        """Do the work. Override this; it may be ``async def``."""
        raise NotImplementedError(f"{type(self).__name__}.run() is not implemented.")

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
    ) -> TaskHandle:
        """Hand this task to a backend (``TASKS_BACKEND`` unless given); return its handle.

        Inside ``transaction.atomic()`` the hand-over waits for the commit and never happens on
        rollback, unless ``on_commit=False``. Options the backend cannot honour raise
        ``UnsupportedOptionError`` here rather than being dropped.
        """
        from .backends.base import EnqueueRequest, submit
        from .conf import get_backend

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
    ) -> list[TaskHandle]:
        """Start one run per params object, in bulk where the backend can; one handle each."""
        from .backends.base import EnqueueRequest, submit_many
        from .conf import get_backend

        requests = [
            EnqueueRequest.for_task(cls(p), delay=delay, eta=eta, queue=queue, priority=priority)
            for p in params
        ]
        return submit_many(backend or get_backend(), requests, on_commit=on_commit)

    @classmethod
    def backoff(cls, attempt: int) -> timedelta:
        """How long to wait before the attempt after ``attempt`` (1-based)."""
        seconds = min(cls.backoff_base * cls.backoff_factor ** (attempt - 1), cls.backoff_max)
        if cls.backoff_jitter:
            seconds = random.uniform(seconds / 2, seconds)
        return timedelta(seconds=seconds)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.params!r}>"


def _find_params_model(cls: type) -> type[BaseModel] | None:
    """The first concrete BaseModel type argument given to Task or a generic subclass of it."""
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            origin = get_origin(base)
            if not (isinstance(origin, type) and issubclass(origin, Task)):
                continue
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    return arg
    return None


def _check_options(cls: type[Task[Any]]) -> None:
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls.name, str) or not cls.name or "/" in cls.name:
        raise TaskDefinitionError(f"{where}.name must be a non-empty string without '/'.")
    if not isinstance(cls.max_attempts, int) or cls.max_attempts < 1:
        raise TaskDefinitionError(f"{where}.max_attempts must be an integer >= 1.")
    if not -100 <= cls.priority <= 100:
        raise TaskDefinitionError(f"{where}.priority must be between -100 and 100.")
    if cls.timeout is not None and cls.timeout <= 0:
        raise TaskDefinitionError(f"{where}.timeout must be a positive number of seconds.")
    for option in ("retry_on", "discard_on"):
        value = getattr(cls, option)
        if not isinstance(value, tuple) or not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in value
        ):
            raise TaskDefinitionError(f"{where}.{option} must be a tuple of exception classes.")
