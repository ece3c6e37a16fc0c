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


class Values(BaseModel):
    values: list[int]


class Total(tasks.Task[Values, int]):
    """Sums its values; notes that it ran."""

    name = "tests.wf.total"

    def run(self) -> int:
        seen.append(f"total {self.params.values}")
        return sum(self.params.values)


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
