"""The same task bodies for each system: ``noop`` does nothing, ``stamp`` returns the time
its body began (for start-to-body latency); ours also has ``nap`` (``await asyncio.sleep``)
and ``sync_nap`` (``time.sleep``), for ``bench_async.py``."""

from __future__ import annotations

import asyncio
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

    class NapParams(BaseModel):
        n: int
        seconds: float = 0.1

    class Nap(tasks.Task[NapParams]):
        """Awaits a sleep (an API call's wait, without the API)."""

        name = "bench.nap"

        async def run(self) -> None:
            await asyncio.sleep(self.params.seconds)

    class SyncNap(tasks.Task[NapParams]):
        """The same wait, blocking a thread."""

        name = "bench.sync_nap"

        def run(self) -> None:
            time.sleep(self.params.seconds)

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
