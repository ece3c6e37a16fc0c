"""The benchmark's Django task functions (the same body on both backends, by ``using()``)."""

import time

from django.tasks import task


@task
def noop(n: int) -> None:
    """Nothing."""


@task
def stamp(n: int) -> float:
    """When the body started (``time.time()``), for the idle latency."""
    return time.time()
