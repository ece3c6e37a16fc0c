"""The fast paths of ``start()`` -> queue -> worker -> ``execute()`` behave like the slow ones:
the transaction check, run ids, params validation, and the ThreadingBackend's ready queue."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from pydantic import BaseModel, ValidationError

import django_generic_tasks as tasks
from django_generic_tasks.backends import ThreadingBackend
from django_generic_tasks.core import status
from django_generic_tasks.core.params import validate_params
from django_generic_tasks.support.compat import in_atomic_block as _in_atomic_block
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")


class Label(BaseModel):
    label: str = ""


order: list[str] = []
gate = threading.Event()
waiting = threading.Event()


class Ordered(tasks.Task[Label]):
    """Records its label; the first run, labelled 'wait', holds the only worker."""

    name = "tests.hot_path.ordered"

    def run(self) -> None:
        if self.params.label == "wait":
            waiting.set()
            gate.wait(30)
        order.append(self.params.label)


@pytest.fixture
def single() -> Iterator[ThreadingBackend]:
    order.clear()
    gate.clear()
    waiting.clear()
    backend = ThreadingBackend(max_workers=1, drain_timeout=10)
    yield backend
    gate.set()
    backend.close(wait=True)


def test_runs_of_one_priority_keep_their_order_and_priorities_interleave(
    single: ThreadingBackend,
) -> None:
    Ordered({"label": "wait"}).start(backend=single)
    assert waiting.wait(30)
    starts = [(f"p{priority}-{n}", priority) for n in range(3) for priority in (-7, 0, 7, 100)]
    for label, priority in starts:
        Ordered({"label": label}).start(priority=priority, backend=single)
    gate.set()
    assert single.wait_idle(30)
    expected = [f"p{priority}-{n}" for priority in (100, 7, 0, -7) for n in range(3)]
    assert order == ["wait", *expected]


def test_a_priority_whose_runs_all_ran_orders_new_runs_again(single: ThreadingBackend) -> None:
    gate.set()
    Ordered({"label": "first"}).start(priority=5, backend=single)
    assert single.wait_idle(30)
    gate.clear()
    waiting.clear()
    Ordered({"label": "wait"}).start(backend=single)
    assert waiting.wait(30)
    for label, priority in [("low", -1), ("again", 5), ("mid", 0), ("again2", 5)]:
        Ordered({"label": label}).start(priority=priority, backend=single)
    gate.set()
    assert single.wait_idle(30)
    assert order == ["first", "wait", "again", "again2", "mid", "low"]


def test_many_runs_on_many_workers_all_run_once() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    class Count(tasks.Task[Label]):
        name = "tests.hot_path.count"

        def run(self) -> None:
            with lock:
                seen.append(self.params.label)

    backend = ThreadingBackend(max_workers=4)
    try:
        handles = [Count({"label": str(n)}).start(backend=backend) for n in range(2_000)]
        assert backend.wait_idle(60)
    finally:
        backend.close()
    assert sorted(seen, key=int) == [str(n) for n in range(2_000)]
    assert len({handle.id for handle in handles}) == 2_000


@pytest.mark.django_db(transaction=True)
def test_the_transaction_check_agrees_with_the_connection_in_every_context() -> None:
    assert _in_atomic_block() is False
    with transaction.atomic():
        assert _in_atomic_block() is connections[DEFAULT_DB_ALIAS].in_atomic_block is True
        seen: list[bool] = []
        other = threading.Thread(target=lambda: seen.append(_in_atomic_block()))
        other.start()
        other.join()
        assert seen == [False]  # another thread has its own connection, outside any atomic

        async def inside_a_loop() -> bool:
            return _in_atomic_block()

        # in an event loop, asgiref keeps connections per async context: no atomic block there
        assert asyncio.run(inside_a_loop()) is False
    assert _in_atomic_block() is False


def test_run_ids_increase_strictly_across_threads() -> None:
    per_thread: list[list[str]] = [[] for _ in range(4)]

    def make(ids: list[str]) -> None:
        ids.extend(status.new_run_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(ids,)) for ids in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ids in per_thread:
        assert ids == sorted(ids)
    every = [run_id for ids in per_thread for run_id in ids]
    assert len(set(every)) == len(every)


def test_run_ids_keep_increasing_when_the_clock_stalls_or_goes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = status.new_run_id()
    clock = iter([10**18 * 2, 10**18 * 2, 10**18 * 2 - 5_000_000, 10**18 * 2])
    monkeypatch.setattr(status, "_time_ns", lambda: next(clock))
    ids = [status.new_run_id() for _ in range(4)]
    assert [before, *ids] == sorted([before, *ids])
    assert len(set(ids)) == 4
    assert all(run_id[14] == "7" and run_id[19] in "89ab" for run_id in ids)


def test_run_ids_after_the_clock_steps_back_keep_fresh_random_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Attack (issue 10, item 13): ids made while the clock is behind the last id's time used
    # to be the last id + 1, + 2... (guessable). Their random tail must stay random.
    now = time.time_ns()
    monkeypatch.setattr(status, "_time_ns", lambda: now)
    before = status.new_run_id()
    monkeypatch.setattr(status, "_time_ns", lambda: now - 3_600 * 10**9)  # one hour back
    ids = [status.new_run_id() for _ in range(200)]
    assert [before, *ids] == sorted([before, *ids])  # still increasing
    assert len(set(ids)) == 200
    tails = [int(run_id.replace("-", "")[16:], 16) & (2**62 - 1) for run_id in ids]
    steps = {b - a for a, b in itertools.pairwise(tails)}
    assert len(steps) > 190  # not a sequence: a fresh random tail each time
    assert all(run_id[14] == "7" and run_id[19] in "89ab" for run_id in ids)
    assert all(run_id[:13] == before[:13] for run_id in ids[:10])  # time field counts on


def test_run_ids_counting_on_past_a_full_millisecond_keep_version_7(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status, "_time_ns", lambda: 0)  # far behind the last id
    monkeypatch.setattr(status, "_last_high", 1234 << 16 | 0x7FFE)  # sub-ms field 0xffe
    first, second = status.new_run_id(), status.new_run_id()
    assert first[:18] == f"{1234:012x}"[:8] + "-" + f"{1234:012x}"[8:] + "-7fff"
    assert second[:18] == f"{1235:012x}"[:8] + "-" + f"{1235:012x}"[8:] + "-7000"
    assert first < second


def test_params_from_json_text_or_bytes_reject_unknown_and_wrong_fields() -> None:
    assert validate_params(Label, '{"label": "x"}') == Label(label="x")
    assert validate_params(Label, b'{"label": "x"}') == Label(label="x")
    with pytest.raises(ValidationError, match="typo"):
        validate_params(Label, '{"label": "x", "typo": 1}')
    with pytest.raises(ValidationError, match="label"):
        validate_params(Label, '{"label": 3}')
    with pytest.raises(ValidationError):
        validate_params(Label, "not json")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_makes_run_ids_of_its_own() -> None:
    # Forking a process with threads is exactly the case the at-fork hook is for.
    import os

    from django_generic_tasks.core.status import new_run_id

    new_run_id()  # fills the parent's buffer of random bits
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write_end, new_run_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 100).decode()
    os.waitpid(pid, 0)
    parent_id = new_run_id()
    assert child_id[19:] != parent_id[19:]  # the random tails differ


@pytest.mark.django_db(transaction=True)
def test_the_inlined_hand_over_and_the_after_commit_one_both_announce_the_run_once() -> None:
    # submit() inlines _enqueue() (its hot path); the after-commit path calls it: both must
    # hand the run over once and send task_enqueued once.
    from django_generic_tasks.signals import task_enqueued

    seen: list[tuple[object, str]] = []

    def on_enqueued(sender: object, request: Any, **kwargs: object) -> None:
        seen.append((sender, request.params_json))

    order.clear()
    backend = ThreadingBackend(max_workers=1)
    task_enqueued.connect(on_enqueued)
    try:
        Ordered({"label": "direct"}).start(backend=backend)
        with transaction.atomic():
            Ordered({"label": "after-commit"}).start(backend=backend)
            assert len(seen) == 1
        assert backend.wait_idle(30)
    finally:
        task_enqueued.disconnect(on_enqueued)
        backend.close()
    assert [label for _, label in seen] == ['{"label":"direct"}', '{"label":"after-commit"}']
    assert {sender for sender, _ in seen} == {Ordered}
    assert sorted(order) == ["after-commit", "direct"]
