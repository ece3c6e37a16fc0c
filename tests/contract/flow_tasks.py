"""Tasks with flow control options, for the flow control contract (``test_flow_contract.py``).

Kept apart from ``tasks.py``: a worker claims through the limits only while tasks with limits
are registered, and the rest of the suite keeps the plain claim. They journal like the
contract tasks (``tests.contract.tasks.record``), each body its start and its end.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

import django_generic_tasks as tasks
from tests.contract.tasks import entries, record


class SlotParams(BaseModel):
    token: str
    key: str = ""
    seconds: float = 0.15


class ContractLimited(tasks.Task[SlotParams]):
    """One run at a time per ``key`` (default: per task)."""

    name = "contract.limited"
    concurrency_limit = 1

    def concurrency_key(self) -> str:
        return self.params.key or super().concurrency_key()

    def run(self) -> None:
        record("start", self.params.token, key=self.params.key)
        time.sleep(self.params.seconds)
        record("end", self.params.token, key=self.params.key)


class ContractRated(tasks.Task[SlotParams]):
    """At most 10 starts a second."""

    name = "contract.rated"
    rate_limit = "10/s"

    def run(self) -> None:
        record("start", self.params.token)


class SnoozeParams(BaseModel):
    token: str
    seconds: float = 0.3
    counts: bool = False


class ContractSnooze(tasks.Task[SnoozeParams]):
    """Asks to be tried again ``seconds`` later on its first attempt, then succeeds."""

    name = "contract.snooze"

    def run(self) -> str:
        record("attempt", self.params.token, attempt=self.context.attempt)
        if self.context.attempt == 1:
            raise tasks.RetryAfter(
                self.params.seconds, counts_as_attempt=self.params.counts, reason="busy"
            )
        record("ran", self.params.token)
        return "done"


def most_at_once(token: str) -> int:
    """The most runs of ``token`` whose bodies overlapped in time (from their journal)."""
    events = []
    for entry in entries(token):
        if entry["kind"] in ("start", "end"):
            events.append((entry["at"], 1 if entry["kind"] == "start" else -1))
    events.sort(key=lambda event: (event[0], event[1]))  # an end before a start at one instant
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak
