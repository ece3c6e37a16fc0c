"""What every backend is: ``BaseBackend``, the one declaration of what a backend can do.

In the style of Django's ``django.tasks.backends.base.BaseTaskBackend``: an abstract base class
whose class attributes are the capability flags and whose methods are the optional operations,
each with a documented default. A backend overrides what it does; callers ask the backend
object (``backend.supports_cancel``, ``backend.finish_notices()``...) and never guess with
``getattr(backend, name, default)``. The capability table (``backends.capabilities``) is
generated from these declarations.

``Task.start()`` builds an ``EnqueueRequest`` (``enqueue.py``) and hands it over through
``dispatch.submit()``; backends settle each attempt's outcome through the retry seam
(``retry.settle()``) with the two hooks declared here, ``record`` and ``requeue``.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.checks import CheckMessage

from ..core.handles import TaskHandle
from ..core.status import TaskStatus
from ..exceptions import ResultNotAvailableError, UnsupportedOptionError
from ..execution import limits

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from ..core.results import FinishNotices
    from ..execution import Outcome
    from ..execution.progress import ProgressSink
    from ..workflows.handle import WorkflowState
    from ..workflows.rules import Plan

__all__ = ["Backend", "BaseBackend"]


class BaseBackend(metaclass=ABCMeta):
    """What ``TASKS_BACKEND`` must be: accepts enqueue requests, and says what it can do.

    Subclasses implement ``enqueue()`` and override the flags and operations below that they
    support. A flag that depends on configuration may be a ``@property`` in the subclass.
    ``submit()`` refuses the ``start()`` options a backend does not honour with
    ``UnsupportedOptionError``, so nothing is silently dropped.
    """

    # -- what start() may ask for ---------------------------------------------------------

    supports_defer: ClassVar[bool] = False
    """``delay`` / ``eta`` are honoured."""
    supports_priority: ClassVar[bool] = False
    """``priority`` orders runs."""
    supports_key: ClassVar[bool] = False
    """``key`` deduplicates: a second start with the same key returns the first run."""
    supports_results: ClassVar[bool] = False
    """Status and results can be read back (``TaskHandle.refresh()``, ``get_result()``)."""
    supports_retries: ClassVar[bool] = False
    """Failed attempts are retried following the task's policy."""
    enqueues_in_transaction: ClassVar[bool] = False
    """The enqueue is part of the caller's transaction, so it needs no on-commit hop."""

    concurrency_limits: ClassVar[str] = ""
    """How ``Task.concurrency_limit`` is honoured: ``"store"`` (across every worker, in the
    claim), ``"process"`` (within this process, around each attempt); ``""``: it is not, and
    ``start()`` of a task that sets one raises ``UnsupportedOptionError``."""
    rate_limits: ClassVar[str] = ""
    """How ``Task.rate_limit`` is honoured, as ``concurrency_limits``."""
    supports_pause: ClassVar[bool] = False
    """Queues and tasks can be paused and resumed (``pause()``, ``resume()``, ``paused()``)."""

    # -- what happens to a run ------------------------------------------------------------

    supports_cancel: ClassVar[bool] = False
    """``handle.cancel()`` cancels runs, running ones too (cooperatively): ``cancel_run()``."""
    supports_progress: ClassVar[bool] = False
    """``report_progress()`` is stored on the run (``handle.progress``) through
    ``progress_sink()``; the ``task_progress`` signal fires on every backend."""
    crash_safe: ClassVar[bool | None] = False
    """A run survives the crash of the process that runs it (it is run again); ``None``:
    not applicable (runs execute in the caller, so nothing is left waiting)."""
    needs_server: ClassVar[str] = ""
    """What must run besides the web processes, in words (``""``: nothing)."""
    waits_outside_transactions: ClassVar[bool] = False
    """``wait()`` refuses to run inside ``atomic()`` on ``run_database``: the transaction would
    hide the run's finish from it."""
    joins_timed_out_attempts: ClassVar[bool] = False
    """The process executing a sync attempt that overran ``Task.timeout`` waits for its thread
    to end before the outcome (and a retry) is written, holding the run meanwhile, so two
    attempts of one run never overlap; otherwise the thread is left to finish in the
    background (``TASKS_MAX_ABANDONED_THREADS``)."""
    supports_workflows: ClassVar[bool] = False
    """``tasks.chain()`` and ``tasks.group()`` start here: ``start_workflow()`` and
    ``workflow_state()``; the next run of a workflow is started when the outcome that causes
    it is kept (on ``DatabaseBackend`` in the same transaction)."""
    supports_continuations: ClassVar[bool] = False
    """``self.step()`` inside ``run()`` keeps the run's completed steps and cursor, so a
    later attempt of the run resumes (its executor registers a ``StepStore``); elsewhere
    ``self.step()`` raises ``UnsupportedOptionError``."""
    pushes_to_endpoints: ClassVar[bool] = False
    """Runs arrive as HTTP requests to the task endpoints, with push headers (attempt, run id)
    that are believed only from an authenticated push queue (check W204)."""
    emulated_push_queue: ClassVar[bool] = False
    """The push queue is an emulator this project may use: it signs nothing, so its deliveries'
    headers are believed without a token."""
    run_database: ClassVar[str | None] = None
    """The Django database alias the runs are stored in, in the caller's transaction
    (``None``: not in a Django database): schedules claim a slot and start its run in one
    transaction there, and ``waits_outside_transactions`` looks at that connection."""
    queues: Mapping[str, str] = MappingProxyType({})
    """Task queue name -> the backend's own queue name, for queues this backend maps (the
    HTTP API's ``/start?queue=`` accepts these names)."""
    capability_notes: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Words shown beside a flag in the capability table (flag name -> note)."""

    name: ClassVar[str] = "BaseBackend"
    """What runs of this backend show as ``self.context.backend`` and what its attempt chains
    are keyed by: the class name unless a subclass sets its own."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        if cls.concurrency_limits == "process" or cls.rate_limits == "process":
            limits.enforce_in_process(cls.name)

    @property
    def keeps_nul_characters(self) -> bool:
        """Whether runs may hold NUL characters in params and keys (the HTTP API answers 422
        for them when not: ``DatabaseBackend`` on PostgreSQL)."""
        return True

    # -- the operations -------------------------------------------------------------------

    @abstractmethod
    def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
        """Accept one task run; return its handle."""

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle[Any]]:
        """Accept many runs, one handle per request, in order (one after the other unless
        the backend has a real bulk path)."""
        return [self.enqueue(request) for request in requests]

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:  # noqa: B027
        """Keep the outcome of an attempt (retry seam hook; backends without results: no-op)."""

    def requeue(self, request: EnqueueRequest) -> None:
        """Send a run again as ``request.attempt``, due at ``request.run_after`` (retry seam
        hook; by default through ``enqueue()``)."""
        self.enqueue(request)

    def get_result(self, run_id: str) -> TaskHandle[Any]:
        """A fresh handle for ``run_id`` (only when ``supports_results``)."""
        raise ResultNotAvailableError(f"{type(self).__name__} does not keep task results.")

    def run_params(self, run_id: str) -> Any:
        """The params ``run_id`` was started with, as JSON data; ``None`` when this backend
        does not keep them (the HTTP API then cannot tell a key's replay from a reuse)."""
        return None

    def cancel_run(self, run_id: str) -> None:
        """Cancel ``run_id`` (only when ``supports_cancel``)."""
        raise UnsupportedOptionError(
            f"{type(self).__name__} cannot cancel runs; run {run_id} goes on."
        )

    def start_workflow(self, plan: Plan) -> None:
        """Start a workflow: its first runs (``plan.first``) and what it keeps of the rest
        (only when ``supports_workflows``)."""
        raise UnsupportedOptionError(
            f"{type(self).__name__} cannot run workflows (tasks.chain / tasks.group); use "
            "DatabaseBackend (or InMemoryBackend / ImmediateBackend in tests)."
        )

    def workflow_state(self, workflow_id: str) -> WorkflowState:
        """The workflow ``workflow_id`` now (only when ``supports_workflows``)."""
        raise ResultNotAvailableError(f"{type(self).__name__} does not keep workflows.")

    def workflow_of(self, run_id: str) -> tuple[str, str, int, str] | None:
        """The workflow run ``run_id`` belongs to: (workflow id, kind, position, role);
        ``None`` when none (only when ``supports_workflows``)."""
        return None

    def join_batch(
        self, batch_id: str, requests: Sequence[EnqueueRequest], first: int
    ) -> list[TaskHandle[Any]]:
        """Start ``requests`` as members ``first``... of batch ``batch_id``; one handle each
        (only when ``supports_workflows``)."""
        raise UnsupportedOptionError(f"{type(self).__name__} cannot run batches.")

    def close_batch(self, batch_id: str, count: int) -> None:
        """The block of batch ``batch_id`` ended after ``count`` starts: once they all ended,
        its callbacks start (only when ``supports_workflows``)."""
        raise UnsupportedOptionError(f"{type(self).__name__} cannot run batches.")

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        """Batch ``batch_id``'s runs by status (only when ``supports_workflows``)."""
        raise ResultNotAvailableError(f"{type(self).__name__} does not keep batches.")

    def finish_notices(self) -> FinishNotices | None:
        """What wakes ``wait()`` when a run ends; ``None``: ``wait()`` polls."""
        return None

    def progress_sink(self) -> ProgressSink | None:
        """A new sink for the progress reports of the runs this process executes for this
        backend (only when ``supports_progress``; its executor registers it)."""
        return None

    def pause(self, kind: str, name: str) -> bool:
        """Pause the queue (``kind`` ``"queue"``) or task (``"task"``) ``name``: its waiting
        runs stay waiting until ``resume()``; ``False`` when it already was paused (only when
        ``supports_pause``)."""
        raise UnsupportedOptionError(f"{type(self).__name__} cannot pause queues or tasks.")

    def resume(self, kind: str, name: str) -> bool:
        """Resume a paused queue or task; ``False`` when it was not paused."""
        raise UnsupportedOptionError(f"{type(self).__name__} cannot pause queues or tasks.")

    def paused(self) -> list[tuple[str, str, Any]]:
        """What is paused: ``(kind, name, since)``, oldest first (``[]`` when not
        ``supports_pause``)."""
        return []

    def check(self) -> list[CheckMessage]:
        """Django system check messages about this backend's configuration."""
        return []

    def close(self) -> None:  # noqa: B027  (optional: nothing to release by default)
        """Release what this backend holds (clients, connections); it stays usable."""

    def handle_for(
        self, request: EnqueueRequest, status: TaskStatus | None = None
    ) -> TaskHandle[Any]:
        """A fresh handle for ``request`` (status from its ``run_after`` unless given)."""
        if status is None:
            status = TaskStatus.SCHEDULED if request.run_after else TaskStatus.READY
        return TaskHandle(id=request.run_id, name=request.task_name, status=status, backend=self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


Backend = BaseBackend
"""Another name for ``BaseBackend`` (the type ``TASKS_BACKEND`` must have)."""
