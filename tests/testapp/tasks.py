"""Tasks shared by the test suite (autodiscovered as an installed app's tasks module)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

import django_generic_tasks as tasks

calls: list[tuple[str, Any]] = []
attempts: Counter[str] = Counter()
lock = threading.Lock()


class Transient(Exception):
    """A failure worth retrying."""


class Permanent(Exception):
    """A failure that retrying cannot fix."""


class AddParams(BaseModel):
    """Two numbers to add."""

    a: int = Field(description="The first addend.")
    b: int = Field(default=0, description="The second addend.")


class AddTask(tasks.Task[AddParams]):
    """Adds two numbers and records the call."""

    name = "tests.add"

    def run(self) -> int:
        with lock:
            calls.append((self.name, self.params.a + self.params.b))
        return self.params.a + self.params.b


class FlakyParams(BaseModel):
    token: str
    failures: int = 2


class FlakyTask(tasks.Task[FlakyParams]):
    """Fails ``failures`` times per token, then succeeds."""

    name = "tests.flaky"
    max_attempts = 4
    backoff_base = 0.01
    retry_on = (Transient,)
    discard_on = (Permanent,)

    def run(self) -> str:
        with lock:
            attempts[self.params.token] += 1
            count = attempts[self.params.token]
        if self.params.token.startswith("discard"):
            raise Permanent("no point retrying")
        if count <= self.params.failures:
            raise Transient(f"failure {count}")
        with lock:
            calls.append((self.name, self.params.token))
        return self.params.token


class AsyncParams(BaseModel):
    value: str


class AsyncEchoTask(tasks.Task[AsyncParams]):
    """An async task."""

    name = "tests.async_echo"

    async def run(self) -> str:
        import asyncio

        await asyncio.sleep(0)
        with lock:
            calls.append((self.name, self.params.value))
        return self.params.value


def reset() -> None:
    """Forget recorded calls and attempts."""
    with lock:
        calls.clear()
        attempts.clear()
