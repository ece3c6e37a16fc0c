"""Steps that resume (continuations): ``self.step(name)`` inside ``run()``.

A run's completed steps and the cursor of the step it is in are kept on the run by its
backend's ``StepStore`` (the database worker: ``TaskRun.steps``; the in-process backends: a
dict), so the next attempt of the same run -- after a retry, a deploy or a crash -- skips the
completed steps and starts the current one from its last saved cursor.

One form skips a completed step, because Python can skip the body of a ``for`` loop but not
that of a ``with`` block::

    for step in self.step("fetch"):       # runs once; not at all when done on an earlier attempt
        fetch()

    for step in self.step("process"):     # an iterating step: resumed from the cursor
        for item in items_after(step.cursor):  # (None the first time)
            process(item)
            step.advance(item.id)

The body ending normally completes the step; an exception (or ``break``) leaves it
uncompleted, with the cursor it reached saved. ``with self.step(name) as step:`` also works,
but its body runs on every attempt (``step.done`` says the step completed before); a completed
step keeps its last cursor, so an iterating body that starts after ``step.cursor`` does no
item again.

The cursor is saved at most once every ``Task.step_save_every`` seconds (0.5 by default; one
UPDATE of the run each time, the advances between cost a clock read), and always when the step
ends; so a SIGKILL re-processes at most that interval's items. A worker's graceful shutdown
stops a run at its next step boundary (a step's start or an ``advance()``): the cursor is saved
and the same attempt is put back (``AttemptInterrupted``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import AttemptInterrupted, InvalidOptionError, UnsupportedOptionError

if TYPE_CHECKING:
    from ..core.task import Task

__all__ = [
    "InProcessSteps",
    "Step",
    "StepStore",
    "register_step_store",
    "step",
    "unregister_step_store",
]

STEP_SAVE_EVERY = 0.5
"""Default seconds between two saves of an iterating step's cursor (``Task.step_save_every``)."""


class StepStore(Protocol):
    """Where a backend keeps the steps of its runs."""

    def load(self, run_id: str) -> dict[str, Any] | None:
        """The saved steps of ``run_id``: ``{"done": [names], "cursors": {name: cursor}}``."""
        ...

    def save(self, run_id: str, attempt: int, state: dict[str, Any]) -> None:
        """Keep ``state`` for ``run_id`` (only while its attempt ``attempt`` runs)."""
        ...

    def stopping(self) -> bool:
        """Whether runs should stop at their next step boundary (a graceful shutdown)."""
        ...


class InProcessSteps:
    """Steps kept in this process (``ImmediateBackend``, ``InMemoryBackend``, a direct
    ``run()``): a retry of the same run resumes."""

    def __init__(self) -> None:
        self._states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def load(self, run_id: str) -> dict[str, Any] | None:
        """The steps kept for ``run_id``."""
        with self._lock:
            found = self._states.get(run_id)
            return None if found is None else {**found, "done": list(found["done"])}

    def save(self, run_id: str, attempt: int, state: dict[str, Any]) -> None:
        """Keep ``state`` for ``run_id``."""
        with self._lock:
            self._states[run_id] = {"done": list(state["done"]), "cursors": dict(state["cursors"])}

    def stopping(self) -> bool:
        """Never: nothing here shuts down."""
        return False


IN_PROCESS = InProcessSteps()
_stores: dict[str, StepStore] = {"direct": IN_PROCESS}


def register_step_store(backend: str, store: StepStore) -> None:
    """Keep the steps of runs executed with backend name ``backend`` in ``store``."""
    _stores[backend] = store


def unregister_step_store(backend: str, store: StepStore) -> None:
    """Stop using ``store`` (if it is still the one registered for ``backend``)."""
    if _stores.get(backend) is store:
        del _stores[backend]


class Step:
    """One step of a run: ``cursor`` (where it stopped; ``None`` the first time),
    ``advance(cursor)``, ``done`` (completed on an earlier attempt). Iterate it (``for step
    in self.step(name):``) to skip it once completed."""

    def __init__(self, task: Task[Any], name: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidOptionError("self.step(name) needs a non-empty string.")
        context = task.context
        store = _stores.get(context.backend)
        if store is None:
            raise UnsupportedOptionError(
                f"{context.backend} cannot resume steps (self.step()); use DatabaseBackend."
            )
        self.name = name
        self._store = store
        self._run_id, self._attempt = context.run_id, context.attempt
        state = task.__dict__.get("_steps_state")
        if state is None:
            state = store.load(self._run_id) or {"done": [], "cursors": {}}
            task.__dict__["_steps_state"] = state
        self._state: dict[str, Any] = state
        self._every = float(type(task).step_save_every)
        self._saved_at = time.monotonic()
        self._dirty = False
        self.done = name in state["done"]
        self._task = task

    @property
    def cursor(self) -> Any:
        """The last cursor saved by ``advance()`` (``None``: none yet)."""
        return self._state["cursors"].get(self.name)

    def advance(self, cursor: Any) -> None:
        """Note how far the step got (JSON data); saved at most once every
        ``Task.step_save_every`` seconds, and when the step ends. A worker's graceful
        shutdown stops the run here (saved first)."""
        self._state["cursors"][self.name] = cursor
        self._dirty = True
        if self._store.stopping():
            self._save()
            raise AttemptInterrupted(f"The worker stops: run {self._run_id} resumes at {cursor!r}.")
        if time.monotonic() - self._saved_at >= self._every:
            self._save()

    def _save(self) -> None:
        self._store.save(self._run_id, self._attempt, self._state)
        self._saved_at = time.monotonic()
        self._dirty = False

    def _begin(self) -> None:
        if self._store.stopping():
            raise AttemptInterrupted(f"The worker stops: run {self._run_id} resumes later.")
        done = self._state["done"]
        self._task.report_progress(len(done), None, self.name)

    def _complete(self) -> None:
        if self.name not in self._state["done"]:
            self._state["done"].append(self.name)
        self._save()  # the cursor stays: a ``with`` body that runs again resumes after it

    def __enter__(self) -> Step:
        self._begin()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self._complete()
        elif self._dirty:  # the attempt fails or stops: the next one resumes from here
            self._save()

    def __iter__(self) -> Iterator[Step]:
        if self.done:
            return
        self._begin()
        try:
            yield self
        except GeneratorExit:  # the body raised or broke out: the next attempt resumes here
            if self._dirty:
                self._save()
            raise
        self._complete()


def step(task: Task[Any], name: str) -> Step:
    """``Task.step()``: the step ``name`` of ``task``'s run."""
    return Step(task, name)
