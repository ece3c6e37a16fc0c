"""Attack (issue 10, item 8): ThreadingBackend must not hold delayed runs without limit.

Before: 200 starts of 1 MB params with ``delay=315000000`` were all held in memory (~250 MB).
Now ``start()`` is bounded by ``max_pending`` (ready + running + due later), ``max_delay`` and
``max_delayed_bytes``; over a bound it raises ``EnqueueError`` (HTTP ``/start``: 503) or, for a
delay over ``max_delay``, ``InvalidOptionError`` (400); nothing is held for a refused run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client

import django_generic_tasks as tasks
from django_generic_tasks.backends import ThreadingBackend
from django_generic_tasks.conf import load_backend
from django_generic_tasks.exceptions import ConfigurationError, EnqueueError, InvalidOptionError
from tests.testapp.tasks import AsyncEchoTask, AsyncParams

MB = "x" * 1_000_000
holding, release = threading.Event(), threading.Event()


class Hold(tasks.Task[AsyncParams]):
    """Holds its worker until the test releases it."""

    name = "tests.threading_bounds.hold"

    def run(self) -> None:
        holding.set()
        release.wait(30)


@pytest.fixture
def make() -> Iterator[type[ThreadingBackend]]:
    made: list[ThreadingBackend] = []

    def build(**options: object) -> ThreadingBackend:
        backend = ThreadingBackend(**options)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield build  # type: ignore[misc]
    for backend in made:
        backend.close(wait=False)


def test_large_delayed_starts_are_refused_once_the_held_bytes_reach_the_bound(
    make: type[ThreadingBackend],
) -> None:
    backend = make()
    accepted = refused = 0
    for _ in range(200):
        try:
            AsyncEchoTask({"value": MB}).start(delay=timedelta(hours=1), backend=backend)
        except EnqueueError:
            refused += 1
        else:
            accepted += 1
    size = len(json.dumps({"value": MB}))
    assert accepted == 64 * 1024 * 1024 // size  # the default max_delayed_bytes is 64 MiB
    assert refused == 200 - accepted
    assert len(backend._later) == accepted
    assert backend._later_bytes <= backend.max_delayed_bytes


def test_a_delay_over_max_delay_is_refused_and_nothing_is_held(
    make: type[ThreadingBackend],
) -> None:
    backend = make()
    with pytest.raises(InvalidOptionError, match="max_delay"):
        AsyncEchoTask({"value": "v"}).start(delay=timedelta(seconds=315_000_000), backend=backend)
    with pytest.raises(InvalidOptionError, match="max_delay"):
        AsyncEchoTask.start_many([{"value": "v"}], delay=timedelta(days=2), backend=backend)
    assert (backend._later, backend._later_bytes) == ([], 0)
    short = make(max_delay=10)
    with pytest.raises(InvalidOptionError):
        AsyncEchoTask({"value": "v"}).start(delay=timedelta(seconds=11), backend=short)
    AsyncEchoTask({"value": "v"}).start(delay=timedelta(seconds=9), backend=short)
    assert len(short._later) == 1


def test_many_starts_are_refused_after_max_pending_whether_due_now_or_later(
    make: type[ThreadingBackend],
) -> None:
    backend = make(max_workers=1, max_pending=5)
    try:
        Hold({"value": "hold"}).start(backend=backend)  # running: holds the only worker
        assert holding.wait(30)
        for _ in range(2):
            AsyncEchoTask({"value": "later"}).start(delay=timedelta(hours=1), backend=backend)
        for _ in range(2):
            AsyncEchoTask({"value": "now"}).start(backend=backend)
        with pytest.raises(EnqueueError, match="max_pending = 5"):
            AsyncEchoTask({"value": "now"}).start(backend=backend)
        with pytest.raises(EnqueueError):
            AsyncEchoTask({"value": "later"}).start(delay=timedelta(hours=1), backend=backend)
        assert backend._unfinished + len(backend._later) == 5
    finally:
        release.set()
    assert backend.wait_idle(30)
    AsyncEchoTask({"value": "now"}).start(backend=backend)  # room again


def test_start_many_that_does_not_fit_starts_none(make: type[ThreadingBackend]) -> None:
    backend = make(max_pending=3)
    with pytest.raises(EnqueueError):
        AsyncEchoTask.start_many(
            [{"value": str(n)} for n in range(4)], delay=timedelta(hours=1), backend=backend
        )
    assert backend._later == []


@pytest.mark.parametrize(
    "options",
    [{"max_pending": 0}, {"max_delay": -1}, {"max_delayed_bytes": "big"}, {"max_delay": True}],
)
def test_invalid_bounds_are_configuration_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        load_backend(ThreadingBackend, options)


@pytest.mark.django_db(transaction=True)  # /start hands over at once, not after a commit
def test_http_start_answers_503_when_the_backend_is_full(make: type[ThreadingBackend]) -> None:
    from django_generic_tasks import conf

    backend = make(max_delayed_bytes=3_000_000)
    body = json.dumps({"value": MB})
    statuses = []
    with conf.override_backend(backend):
        for _ in range(5):
            response = Client().post(
                f"/api/tasks/{AsyncEchoTask.name}/start?delay=3600",
                body,
                content_type="application/json",
            )
            statuses.append(response.status_code)
    assert statuses == [202, 202, 503, 503, 503]
    assert len(backend._later) == 2
