"""Tasks the contract suite starts on every backend.

They record what happened in a journal file (JSON lines) named by the environment variable
``TASKS_CONTRACT_JOURNAL``, so runs that happen in another process (a worker, a server) are
observed too: that process must import this module (``import tests.contract.tasks``) and
inherit the environment. Each test uses fresh tokens, so one journal serves a whole session.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.execution.attempts import Attempt, Outcome
from django_generic_tasks.middleware import AttemptMiddleware
from tests.testapp.models import Customer

_OWN_JOURNAL = "TASKS_CONTRACT_JOURNAL" not in os.environ
JOURNAL = Path(
    os.environ.setdefault(
        "TASKS_CONTRACT_JOURNAL",
        str(Path(tempfile.gettempdir()) / f"tasks-contract-{os.getpid()}.jsonl"),
    )
)
_lock = threading.Lock()

if _OWN_JOURNAL:
    atexit.register(JOURNAL.unlink, missing_ok=True)


def record(kind: str, token: str, **data: Any) -> None:
    """Append one journal entry (one short line: an atomic append on POSIX)."""
    line = json.dumps({"kind": kind, "token": token, "at": time.time(), "pid": os.getpid(), **data})
    with _lock, JOURNAL.open("a", encoding="utf-8") as journal:
        journal.write(line + "\n")


def entries(token: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The journal entries of ``token`` (of one ``kind`` if given), oldest first."""
    if not JOURNAL.exists():
        return []
    found = []
    # Only whole lines: a line another thread or process is appending right now may be read
    # in part (it has no newline yet; it is read whole next time).
    for line in JOURNAL.read_text(encoding="utf-8").split("\n")[:-1]:
        entry = json.loads(line)
        if entry["token"] == token and (kind is None or entry["kind"] == kind):
            found.append(entry)
    return found


class Transient(Exception):
    """Worth retrying."""


class Permanent(Exception):
    """Not worth retrying."""


class Token(BaseModel):
    token: str


class RecordParams(BaseModel):
    token: str
    value: str = ""
    when: datetime | None = None
    amount: Decimal | None = None


class ContractRecord(tasks.Task[RecordParams]):
    """Records its params and returns its value."""

    name = "contract.record"

    def run(self) -> str:
        record("ran", self.params.token, params=self.params.model_dump(mode="json"))
        return self.params.value


class Quote(BaseModel):
    """A typed result: a model with a date and a decimal (both travel as JSON strings)."""

    token: str
    amount: Decimal
    at: datetime


class ContractTyped(tasks.Task[Token, Quote]):
    """``Task[P, R]``: returns a ``Quote``."""

    name = "contract.typed"

    def run(self) -> Quote:
        record("ran", self.params.token)
        return Quote(token=self.params.token, amount=Decimal("9.90"), at=datetime(2030, 1, 2))


class ContractAsync(tasks.Task[Token]):
    """An ``async def run``."""

    name = "contract.async"

    async def run(self) -> str:
        import asyncio

        await asyncio.sleep(0)
        record("ran", self.params.token)
        return "async"


class FlakyParams(BaseModel):
    token: str
    failures: int


class ContractFlaky(tasks.Task[FlakyParams]):
    """Fails ``failures`` times (counted in the journal), then succeeds."""

    name = "contract.flaky"
    max_attempts = 3
    retry_on = (Transient,)
    discard_on = (Permanent,)
    backoff_base = 0.05
    backoff_jitter = False

    def run(self) -> str:
        attempt = len(entries(self.params.token, "attempt")) + 1
        record("attempt", self.params.token, attempt=attempt)
        if attempt <= self.params.failures:
            raise Transient(f"failure {attempt}")
        record("ran", self.params.token)
        return "ok"


class ContractDiscard(tasks.Task[Token]):
    """Raises an exception in ``discard_on``."""

    name = "contract.discard"
    max_attempts = 3
    discard_on = (Permanent,)
    backoff_base = 0.01

    def run(self) -> None:
        record("attempt", self.params.token)
        raise Permanent("not worth retrying")


class ContractContext(tasks.Task[Token]):
    """Records ``self.context`` on each attempt; the first attempt fails (retried)."""

    name = "contract.context"
    max_attempts = 2
    retry_on = (Transient,)
    backoff_base = 0.05
    backoff_jitter = False

    def run(self) -> None:
        context = self.context
        record(
            "attempt",
            self.params.token,
            run_id=context.run_id,
            attempt=context.attempt,
            max_attempts=context.max_attempts,
            queue=context.queue,
            enqueued_at=context.enqueued_at.timestamp() if context.enqueued_at else None,
            backend=context.backend,
            same=context is self.context,
        )
        if context.attempt == 1:
            raise Transient("first attempt fails")


class HookParams(BaseModel):
    token: str
    failures: int = 0
    discard: bool = False
    hooks_raise: bool = False


class ContractHooks(tasks.Task[HookParams]):
    """Fails ``failures`` times (or discards), records every lifecycle hook call."""

    name = "contract.hooks"
    max_attempts = 2
    retry_on = (Transient,)
    discard_on = (Permanent,)
    backoff_base = 0.05
    backoff_jitter = False

    def run(self) -> str:
        attempt = len(entries(self.params.token, "attempt")) + 1
        record("attempt", self.params.token, attempt=attempt)
        if self.params.discard:
            raise Permanent("discarded")
        if attempt <= self.params.failures:
            raise Transient(f"failure {attempt}")
        return "done"

    def _hook(self, hook: str, **data: Any) -> None:
        record("hook", self.params.token, hook=hook, attempt=self.context.attempt, **data)
        if self.params.hooks_raise:
            raise RuntimeError(f"{hook} is broken")

    def on_success(self, result: Any) -> None:
        self._hook("on_success", result=result)

    def on_failure(self, error: tasks.ErrorInfo) -> None:
        self._hook("on_failure", error=error.message)

    def on_discard(self, error: tasks.ErrorInfo) -> None:
        self._hook("on_discard", error=error.message)

    def on_retry(self, error: tasks.ErrorInfo, retry_at: datetime | None) -> None:
        self._hook("on_retry", error=error.message, has_retry_at=retry_at is not None)


class CustomerParams(BaseModel):
    token: str
    customer: tasks.ModelRef[Customer]


class ContractModelRef(tasks.Task[CustomerParams]):
    """Records the customer its params reference, as ``run()`` receives it."""

    name = "contract.modelref"
    max_attempts = 3
    backoff_base = 0.01

    def run(self) -> str:
        customer = self.params.customer
        record(
            "ran",
            self.params.token,
            type=type(customer).__name__,
            pk=customer.pk,
            customer=customer.name,
        )
        return customer.name

    def on_discard(self, error: tasks.ErrorInfo) -> None:
        record("discarded", self.params.token, error=error.type, message=error.message)


class JournalAttempts(AttemptMiddleware):
    """A user middleware (``TASKS_MIDDLEWARE``): journals every attempt it sees, with how it
    ended, for the runs of tasks whose params have a ``token``."""

    def __call__(self, task: tasks.Task[Any], attempt: Attempt) -> Outcome:
        outcome = self.next(task, attempt)
        token = getattr(task.params, "token", None)
        if isinstance(token, str):
            record(
                "middleware",
                token,
                attempt=attempt.attempt,
                run_id=attempt.run_id,
                backend=attempt.backend,
                status=str(outcome.status),
                will_retry=outcome.will_retry,
            )
        return outcome


class StepParams(BaseModel):
    token: str
    n: int


class ContractStep(tasks.Task[StepParams, StepParams]):
    """A chain's step: records its ``n`` and returns the next step's params (``n + 1``)."""

    name = "contract.step"

    def run(self) -> StepParams:
        record("step", self.params.token, n=self.params.n)
        if self.params.n == -1:
            raise ValueError(f"step {self.params.n} fails")
        return StepParams(token=self.params.token, n=self.params.n + 1)


class GatherParams(BaseModel):
    results: list[StepParams]


class ContractGather(tasks.Task[GatherParams, list[int]]):
    """A group's callback: records the ``n`` of each result, in the order it got them."""

    name = "contract.gather"

    def run(self) -> list[int]:
        ns = [result.n for result in self.params.results]
        record("gather", self.params.results[0].token, ns=ns)
        return ns


class StepsParams(BaseModel):
    token: str


class ContractSteps(tasks.Task[StepsParams, int]):
    """A step that runs once, then an iterating step that fails once after two items: its
    retry resumes after them."""

    name = "contract.steps"
    max_attempts = 2
    backoff_base = 0.0
    step_save_every = 0.0

    def run(self) -> int:
        token = self.params.token
        for _ in self.step("once"):
            record("once", token)
        for step in self.step("items"):
            start = 0 if step.cursor is None else step.cursor + 1
            for item in range(start, 4):
                if item == 2 and self.context.attempt == 1:
                    raise RuntimeError("fails once")
                record("item", token, n=item)
                step.advance(item)
        return 4
