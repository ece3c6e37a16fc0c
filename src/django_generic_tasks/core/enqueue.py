"""``EnqueueRequest``: one task run, in plain serialisable values, as handed to a backend."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import InvalidOptionError
from .flow import FlowSpec, flow_of
from .params import dump_params
from .status import new_run_id

if TYPE_CHECKING:
    from .task import Task


class WorkflowMembership(Protocol):
    """What a run's in-process workflow is told when the run ends."""

    def ended(self, request: EnqueueRequest, outcome: Any) -> None:
        """``request``'s run ended for good with ``outcome``."""
        ...


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~0.7 µs per start (hot path)
class EnqueueRequest:
    """Everything a backend needs to run one task later, in plain serialisable values.

    A value: treat it as read-only (``next_attempt()`` or ``dataclasses.replace()`` make a
    changed copy). ``run_after`` is an aware datetime (any zone: it is one instant) or ``None``
    for "now".
    """

    run_id: str
    task_name: str
    params_json: str
    queue: str
    priority: int
    run_after: datetime | None
    key: str | None
    max_attempts: int
    timeout: float | None
    attempt: int = 1
    trace_context: str | None = None
    """The W3C ``traceparent`` of the run's PRODUCER span (``None``: not traced)."""
    flow: FlowSpec | None = None
    """The run's concurrency and rate limits (``None``: none, the common case)."""
    workflow: WorkflowMembership | None = None
    """The in-process workflow this run belongs to (``workflows.memory``), told of its end by
    ``retry.settle()``; ``None`` for other runs (the database keeps its own membership)."""

    @classmethod
    def for_task(
        cls,
        task: Task[Any],
        *,
        delay: timedelta | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        key: str | None = None,
    ) -> EnqueueRequest:
        """Build the request for ``task`` with ``start()``'s options, validating them."""
        run_after: datetime | None = None
        if delay is not None or eta is not None or priority is not None or queue is not None:
            run_after = _run_after(delay, eta)
            if priority is not None and not (isinstance(priority, int) and -100 <= priority <= 100):
                raise InvalidOptionError("start(priority=...) must be an integer from -100 to 100.")
            if queue is not None:
                _check_queue(queue)
        if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
            raise InvalidOptionError("start(key=...) must be a non-empty string of <= 255 chars.")
        task_class = type(task)
        request = cls(  # positional: cheaper than keywords on the hot path, in field order
            new_run_id(),
            task_class.name,
            dump_params(task.params),
            queue or task_class.queue,
            task_class.priority if priority is None else priority,
            run_after,
            key,
            task_class.max_attempts,
            task_class.timeout,
        )
        if task_class.concurrency_limit is not None or task_class._rate is not None:
            request.flow = flow_of(task)
        return request

    def next_attempt(self, run_after: datetime | None, *, snooze: bool = False) -> EnqueueRequest:
        """The same run, one attempt later, due at ``run_after`` (``snooze``: with one more
        attempt allowed, so the one that ended does not count against ``max_attempts``)."""
        if snooze:
            return replace(
                self,
                attempt=self.attempt + 1,
                run_after=run_after,
                max_attempts=self.max_attempts + 1,
            )
        return replace(self, attempt=self.attempt + 1, run_after=run_after)


def _check_queue(queue: str) -> None:
    """Refuse a queue that is not a non-empty string, or that ``TASKS_QUEUES`` does not declare."""
    if not isinstance(queue, str) or not queue:
        raise InvalidOptionError("start(queue=...) must be a non-empty string.")
    from ..conf import get_settings

    declared = get_settings().queues
    if declared is not None and queue not in declared:
        raise InvalidOptionError(
            f"start(queue={queue!r}): TASKS_QUEUES does not declare this queue; declared: "
            f"{', '.join(declared) or '(none)'}."
        )


def _run_after(delay: timedelta | None, eta: datetime | None) -> datetime | None:
    """When a run with ``start(delay=..., eta=...)`` is due (``None``: now), validated."""
    if delay is not None and eta is not None:
        raise InvalidOptionError("Pass either delay or eta to start(), not both.")
    if delay is not None:
        if not isinstance(delay, timedelta):
            raise InvalidOptionError("start(delay=...) must be a datetime.timedelta.")
        if delay.total_seconds() < 0:
            raise InvalidOptionError("start(delay=...) must not be negative.")
        return datetime.now(UTC) + delay
    if eta is not None:
        if not isinstance(eta, datetime) or eta.tzinfo is None:
            raise InvalidOptionError(
                "start(eta=...) must be a timezone-aware datetime, "
                "such as django.utils.timezone.now() + timedelta(...)."
            )
        return eta.astimezone(UTC)  # one instant, one zone: backends need not convert
    return None
