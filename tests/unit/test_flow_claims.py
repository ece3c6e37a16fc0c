"""The claim through the limits at the store: a worker takes no more slots than it has hands
(every database), and PostgreSQL's own path: a lock per key instead of one for every claim,
and a finished run's slot handed to the next run of its key in the statement that writes
its outcome."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.execution import Outcome
from django_generic_tasks.models import TaskRun
from django_generic_tasks.store import ClaimedRun, Finished

pytestmark = pytest.mark.django_db(transaction=True)


class KeyParams(BaseModel):
    n: int = 0
    key: str = "a"


class TwoAtOnce(tasks.Task[KeyParams]):
    """At most two runs at once per ``key``."""

    name = "tests.flow.two_at_once"
    concurrency_limit = 2

    def concurrency_key(self) -> str:
        return self.params.key

    def run(self) -> None: ...


def _queue() -> Any:
    return store.for_connection(connection).queue


def _start(key: str, count: int, queue: str = "default") -> None:
    TwoAtOnce.start_many(
        [{"n": n, "key": key} for n in range(count)], backend=DatabaseBackend(), queue=queue
    )


def _claim(worker: str, limit: int = 10, **options: Any) -> list[ClaimedRun]:
    return list(
        _queue().claim(
            worker, options.pop("queues", ()), limit, 30, datetime.now(UTC), (), True, **options
        )
    )


def _params(run: ClaimedRun) -> dict[str, Any]:
    params = run.params
    return dict(json.loads(params) if isinstance(params, str | bytes) else params)


def _running(key: str) -> int:
    return TaskRun.objects.filter(concurrency_key=key, status="running").count()


def _done(run: ClaimedRun) -> Finished:
    outcome = Outcome(run.id, run.task_name, run.attempt, run.max_attempts, TaskStatus.SUCCEEDED)
    return Finished(run, outcome, datetime.now(UTC), 0.01)


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's own claim through the limits")


def test_a_claim_takes_no_more_slots_than_the_hands_it_has_free() -> None:
    _start("a", 5)
    assert len(_claim("w1", admit_most=1)) == 1
    assert len(_claim("w2", admit_most=0)) == 0
    assert len(_claim("w3")) == 1  # the limit (2) holds whatever the hands
    assert _running("a") == 2


def test_keys_are_admitted_each_up_to_its_own_limit() -> None:
    _start("a", 3)
    _start("b", 3)
    claimed = _claim("w1")
    assert sorted(_params(run)["key"] for run in claimed) == ["a", "a", "b", "b"]
    assert _claim("w2") == []


def test_a_finished_run_hands_its_slot_to_the_next_run_of_its_key(postgresql: None) -> None:
    _start("a", 3)
    _start("b", 1)
    first = {_params(run)["n"]: run for run in _claim("w1") if _params(run)["key"] == "a"}
    assert _running("a") == 2
    queue = _queue()
    following = queue.finish_and_claim_next("w1", _done(first[0]), (), (), 30, rated=False)
    assert following is not None
    assert _params(following) == {"n": 2, "key": "a"}
    assert TaskRun.objects.get(pk=first[0].db_id).status == "succeeded"
    assert _running("a") == 2
    # No more runs of "a": the slot stays free; another key's run is not taken.
    assert queue.finish_and_claim_next("w1", _done(first[1]), (), (), 30, rated=False) is None
    assert _running("a") == 1
    assert TaskRun.objects.get(params__key="b").status == "running"  # claimed by w1 before


def test_a_slot_is_not_handed_on_over_a_lowered_limit(postgresql: None) -> None:
    _start("a", 4)
    claimed = _claim("w1")
    assert len(claimed) == 2
    TaskRun.objects.filter(status="ready").update(concurrency_limit=1)  # a deploy lowered it
    queue = _queue()
    assert queue.finish_and_claim_next("w1", _done(claimed[0]), (), (), 30, rated=False) is None
    assert _running("a") == 1


def test_a_finished_run_is_not_handed_on_by_a_worker_that_lost_it(postgresql: None) -> None:
    _start("a", 3)
    claimed = _claim("w1")
    queue = _queue()
    assert queue.finish_and_claim_next("w2", _done(claimed[0]), (), (), 30, rated=False) is None
    assert _running("a") == 2


def test_a_claim_of_one_key_does_not_wait_for_a_claim_of_another(postgresql: None) -> None:
    import psycopg

    _start("a", 2, queue="one")
    _start("b", 2, queue="two")
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    try:  # another claim holds key "a" (its transaction is open)
        other.execute("SELECT pg_advisory_xact_lock(hashtextextended('a', 7046414172))")
        got: list[ClaimedRun] = []
        claiming = threading.Thread(target=lambda: got.extend(_claim_here("w1", ["two"])))
        claiming.start()
        claiming.join(5)
        assert not claiming.is_alive(), "the claim of key b waited for key a's"
        assert {_params(run)["key"] for run in got} == {"b"}
        # A claim that wants key "a" waits for the one in progress, then counts its slots.
        waiting: list[ClaimedRun] = []
        blocked = threading.Thread(target=lambda: waiting.extend(_claim_here("w2", ["one"])))
        blocked.start()
        blocked.join(0.5)
        assert blocked.is_alive()
        other.rollback()
        blocked.join(5)
        assert not blocked.is_alive()
        assert {_params(run)["key"] for run in waiting} == {"a"}
    finally:
        other.close()


def _claim_here(worker: str, queues: list[str]) -> list[ClaimedRun]:
    """A claim on this thread's own connection (closed after)."""
    from django.db import connections

    try:
        return _claim(worker, queues=queues)
    finally:
        connections.close_all()
