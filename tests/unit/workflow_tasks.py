"""Tasks the workflow tests chain and group (registered on import, for in-process workers)."""

from __future__ import annotations

from pydantic import BaseModel

import django_generic_tasks as tasks

seen: list[str] = []
"""What the side-effect tasks did, in order (cleared by the tests)."""


class Number(BaseModel):
    n: int


class AddOne(tasks.Task[Number, int]):
    """Returns n + 1."""

    name = "tests.wf.add_one"

    def run(self) -> int:
        return self.params.n + 1


class Wrapped(BaseModel):
    value: int


class Double(tasks.Task[Wrapped, Number]):
    """Takes an int (its one field), returns a Number: the next step's params as they are."""

    name = "tests.wf.double"

    def run(self) -> Number:
        return Number(n=self.params.value * 2)


class FailIfOdd(tasks.Task[Wrapped, int]):
    """Fails on odd values (no retry)."""

    name = "tests.wf.fail_if_odd"

    def run(self) -> int:
        if self.params.value % 2:
            raise ValueError(f"{self.params.value} is odd")
        return self.params.value


class LimitedDouble(tasks.Task[Wrapped, Number]):
    """``Double`` with a concurrency limit and a rate limit: as a chain step it waits for both."""

    name = "tests.wf.limited_double"
    concurrency_limit = 2
    rate_limit = "100/s"

    def run(self) -> Number:
        return Number(n=self.params.value * 2)


class Values(BaseModel):
    values: list[int]


class Total(tasks.Task[Values, int]):
    """Sums its values; notes that it ran."""

    name = "tests.wf.total"

    def run(self) -> int:
        seen.append(f"total {self.params.values}")
        return sum(self.params.values)


class LimitedTotal(Total):
    """``Total`` with a concurrency limit: as a group's callback it waits for it."""

    name = "tests.wf.limited_total"
    concurrency_limit = 1


class MaybeValues(BaseModel):
    values: list[int | None]


class Collect(tasks.Task[MaybeValues, list[int | None]]):
    """Returns its values as they came (failed members are None)."""

    name = "tests.wf.collect"

    def run(self) -> list[int | None]:
        return self.params.values


class Text(BaseModel):
    text: str


class Shout(tasks.Task[Text, str]):
    """Upper-cases its text."""

    name = "tests.wf.shout"

    def run(self) -> str:
        return self.params.text.upper()


class Pause(BaseModel):
    n: int
    seconds: float = 0.01


class Nap(tasks.Task[Pause, int]):
    """Sleeps a little, returns n (members that end at about the same time)."""

    name = "tests.wf.nap"

    def run(self) -> int:
        import time

        time.sleep(self.params.seconds)
        return self.params.n


class Note(BaseModel):
    text: str


class Remember(tasks.Task[Note]):
    """Notes its text (a batch's callback)."""

    name = "tests.wf.remember"

    def run(self) -> None:
        seen.append(self.params.text)


class Items(BaseModel):
    count: int
    fail_at: int | None = None
    """Fail (once) when reaching this item."""


failed_once: set[int] = set()


class Resumable(tasks.Task[Items, int]):
    """A fetch step, then a process step over ``count`` items with a cursor (saved at every
    advance), then a notify step; notes each step's work in ``seen``."""

    name = "tests.wf.resumable"
    max_attempts = 3
    backoff_base = 0.0
    step_save_every = 0.0

    def run(self) -> int:
        for _ in self.step("fetch"):
            seen.append("fetch")
        for step in self.step("process"):
            start = 0 if step.cursor is None else step.cursor + 1
            for item in range(start, self.params.count):
                if item == self.params.fail_at and item not in failed_once:
                    failed_once.add(item)
                    raise RuntimeError(f"item {item} failed once")
                seen.append(f"item {item}")
                step.advance(item)
        for _ in self.step("notify"):
            seen.append("notify")
        return self.params.count
