"""The same two task bodies for each system: ``noop`` does nothing, ``stamp`` returns the time
its body began (for start-to-body latency)."""

from __future__ import annotations

import os
import time
from typing import Any

if os.environ.get("BENCH_SYSTEM", "ours") == "ours":
    from pydantic import BaseModel

    import django_generic_tasks as tasks

    class Params(BaseModel):
        n: int

    class Noop(tasks.Task[Params]):
        """Does nothing."""

        name = "bench.noop"

        def run(self) -> None:
            return None

    class Stamp(tasks.Task[Params]):
        """Returns when its body began."""

        name = "bench.stamp"

        def run(self) -> float:
            return time.time()

else:
    from django.tasks import task

    @task
    def noop(n: int) -> Any:
        """Does nothing."""
        return None

    @task
    def stamp(n: int) -> Any:
        """Returns when its body began."""
        return time.time()


if os.environ.get("BENCH_FLOW") == "1":  # bench_flow.py only: limits change the claim
    from dbbench import flowtasks  # noqa: F401
