"""Typed results: ``Task[P, R]`` validates what ``run()`` returns, handles decode it back into
an ``R``, and ``handle.wait()`` / ``await_result()`` block until the run is finished."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import (
    CloudTasksBackend,
    DatabaseBackend,
    ImmediateBackend,
    ThreadingBackend,
)
from django_generic_tasks.backends.memory import InMemoryBackend
from django_generic_tasks.core.status import ErrorInfo, TaskStatus
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions


class QuoteParams(BaseModel):
    amount: int
    valid: bool = True


class QuoteResult(BaseModel):
    total: int
    quoted_at: datetime


class QuoteTask(tasks.Task[QuoteParams, QuoteResult]):
    """Returns a quote, or (``valid=False``) something that is not one."""

    name = "tests.results.quote"
    max_attempts = 3
    retry_on = (Exception,)
    failures: list[ErrorInfo] = []

    def run(self) -> QuoteResult:
        if not self.params.valid:
            return {"total": "lots"}  # type: ignore[return-value]  # the bug under test
        return QuoteResult(total=self.params.amount * 2, quoted_at=datetime(2026, 1, 2, tzinfo=UTC))

    def on_failure(self, error: ErrorInfo) -> None:
        QuoteTask.failures.append(error)


class DictQuoteTask(tasks.Task[QuoteParams, QuoteResult]):
    """Returns the quote as a dict: validated into a ``QuoteResult``."""

    name = "tests.results.dict_quote"

    def run(self) -> QuoteResult:
        return {"total": self.params.amount, "quoted_at": "2026-01-02T00:00:00Z"}  # type: ignore[return-value]


class TotalsTask(tasks.Task[QuoteParams, list[int]]):
    """A result that is not a model."""

    name = "tests.results.totals"

    def run(self) -> list[int]:
        return [self.params.amount, self.params.amount + 1]


class UntypedTask(tasks.Task[QuoteParams]):
    """No result type: whatever ``run()`` returns is kept as it is."""

    name = "tests.results.untyped"

    def run(self) -> Any:
        return {"anything": [1, "two"]}


class FailingTask(tasks.Task[QuoteParams, int]):
    """Fails, is discarded, or is cancelled, by amount."""

    name = "tests.results.failing"
    discard_on = (LookupError,)

    def run(self) -> int:
        if self.params.amount == 1:
            raise LookupError("gone")
        if self.params.amount == 2:
            raise tasks.TaskCancelled("stop")
        raise ValueError("card declined")


def drain_later(delay: float) -> threading.Thread:
    """Drain the database queue on another thread after ``delay`` seconds."""

    def target() -> None:
        from django.db import connections

        time.sleep(delay)
        try:
            Worker(WorkerOptions(once=True, interval=0.02)).run(install_signals=False)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


# -- validation of what run() returns ---------------------------------------------------------


def test_returned_model_is_the_handles_result() -> None:
    handle = QuoteTask(QuoteParams(amount=21)).start(backend=ImmediateBackend())
    assert handle.status is TaskStatus.SUCCEEDED
    assert handle.result == QuoteResult(total=42, quoted_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert QuoteTask.result_type is QuoteResult
    assert UntypedTask.result_type is Any


def test_returned_data_is_validated_into_the_result_type() -> None:
    handle = DictQuoteTask(QuoteParams(amount=5)).start(backend=ImmediateBackend())
    assert handle.result == QuoteResult(total=5, quoted_at=datetime(2026, 1, 2, tzinfo=UTC))


def test_invalid_result_fails_the_run_naming_the_task_without_retry() -> None:
    QuoteTask.failures.clear()
    backend = InMemoryBackend()
    handle = QuoteTask(QuoteParams(amount=1, valid=False)).start(backend=backend)
    (outcome,) = backend.run_all()
    assert outcome.status is TaskStatus.FAILED
    assert outcome.attempt == 1
    assert outcome.error is not None
    assert outcome.error.type == "django_generic_tasks.exceptions.InvalidResultError"
    assert "tests.results.quote returned a value that is not a valid QuoteResult" in str(
        outcome.error.message
    )
    assert [e.type for e in QuoteTask.failures] == [outcome.error.type]
    assert handle.refresh().status is TaskStatus.FAILED


def test_untyped_tasks_keep_their_result_as_it_is() -> None:
    handle = UntypedTask(QuoteParams(amount=1)).start(backend=ImmediateBackend())
    assert handle.result == {"anything": [1, "two"]}


def test_result_type_pydantic_cannot_handle_is_refused_at_class_definition() -> None:
    class Opaque:
        pass

    with pytest.raises(tasks.TaskDefinitionError, match=r"returns .*Opaque.*Pydantic"):

        class OpaqueTask(tasks.Task[QuoteParams, Opaque]):  # type: ignore[type-var]
            abstract = False
            name = "tests.results.opaque"

            def run(self) -> Opaque:
                return Opaque()


def test_generic_intermediate_bases_pass_the_result_type_on() -> None:
    class Base[P: BaseModel, R](tasks.Task[P, R]):
        abstract = True

    class Concrete(Base[QuoteParams, int]):
        name = "tests.results.concrete"

        def run(self) -> int:
            return 1

    assert Concrete.result_type is int
    assert Concrete.params_model is QuoteParams


# -- stored results and wait() on the database backend ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_stored_result_is_decoded_back_into_the_result_type() -> None:
    backend = DatabaseBackend()
    quote = QuoteTask(QuoteParams(amount=4)).start(backend=backend)
    totals = TotalsTask(QuoteParams(amount=7)).start(backend=backend)
    drain_later(0).join()
    assert quote.refresh().result == QuoteResult(
        total=8, quoted_at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert TaskRun.objects.get(pk=quote.id).result == {
        "total": 8,
        "quoted_at": "2026-01-02T00:00:00Z",
    }
    assert totals.refresh().result == [7, 8]


@pytest.mark.django_db(transaction=True)
def test_wait_returns_the_result_once_a_worker_has_run_it() -> None:
    handle = QuoteTask(QuoteParams(amount=3)).start(backend=DatabaseBackend())
    worker = drain_later(0.2)
    result = handle.wait(timeout=30)
    worker.join()
    assert result == QuoteResult(total=6, quoted_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert handle.status is TaskStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("amount", "status", "error_type"),
    [
        (0, TaskStatus.FAILED, "builtins.ValueError"),
        (1, TaskStatus.DISCARDED, "builtins.LookupError"),
        (2, TaskStatus.CANCELLED, "django_generic_tasks.exceptions.TaskCancelled"),
    ],
)
def test_wait_raises_run_failed_error_with_the_error_when_the_run_did_not_succeed(
    amount: int, status: TaskStatus, error_type: str
) -> None:
    handle = FailingTask(QuoteParams(amount=amount)).start(backend=DatabaseBackend())
    drain_later(0).join()
    with pytest.raises(tasks.RunFailedError) as caught:
        handle.wait(timeout=5)
    assert caught.value.status is status
    assert caught.value.error.type == error_type
    assert caught.value.run_id == handle.id
    assert caught.value.task_name == FailingTask.name
    assert str(caught.value).startswith(f"Run {handle.id} of {FailingTask.name} ended {status}")


@pytest.mark.django_db(transaction=True)
def test_wait_times_out_with_timeout_error_and_the_run_goes_on() -> None:
    handle = QuoteTask(QuoteParams(amount=3)).start(backend=DatabaseBackend())
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=f"Run {handle.id} of tests.results.quote did not"):
        handle.wait(timeout=0.3)
    assert 0.3 <= time.monotonic() - began < 3
    assert TaskRun.objects.get(pk=handle.id).status == TaskStatus.READY


@pytest.mark.django_db(transaction=True)
def test_wait_with_zero_timeout_reads_the_run_once() -> None:
    handle = QuoteTask(QuoteParams(amount=3)).start(backend=DatabaseBackend())
    drain_later(0).join()
    assert handle.status is TaskStatus.READY  # the handle did not see the worker
    assert handle.wait(timeout=0).total == 6


@pytest.mark.parametrize("timeout", [-1, float("nan"), True])
def test_wait_rejects_a_bad_timeout(timeout: float) -> None:
    handle = QuoteTask(QuoteParams(amount=3)).start(backend=InMemoryBackend())
    with pytest.raises(tasks.InvalidOptionError, match="timeout"):
        handle.wait(timeout=timeout)


@pytest.mark.django_db(transaction=True)
def test_wait_inside_a_transaction_is_refused_on_the_database_backend() -> None:
    with transaction.atomic():
        handle = QuoteTask(QuoteParams(amount=3)).start(backend=DatabaseBackend())
        with pytest.raises(tasks.WaitInTransactionError, match="after the commit"):
            handle.wait(timeout=1)


@pytest.mark.django_db(transaction=True)
def test_stored_result_that_no_longer_matches_the_type_raises_a_clear_error() -> None:
    handle = QuoteTask(QuoteParams(amount=3)).start(backend=DatabaseBackend())
    drain_later(0).join()
    TaskRun.objects.filter(pk=handle.id).update(result={"total": "many"})
    with pytest.raises(tasks.InvalidResultError, match=r"stored result of tests\.results\.quote"):
        handle.refresh()


@pytest.mark.django_db(transaction=True)
def test_await_result_waits_without_blocking_the_event_loop() -> None:
    handle = QuoteTask(QuoteParams(amount=5)).start(backend=DatabaseBackend())
    worker = drain_later(0.2)
    ticks = 0

    async def main() -> QuoteResult:
        nonlocal ticks
        waiting = asyncio.ensure_future(handle.await_result(timeout=30))
        while not waiting.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return await waiting

    assert asyncio.run(main()).total == 10
    worker.join()
    assert ticks >= 5  # the loop kept running while the run was waited for


def test_await_result_raises_like_wait() -> None:
    backend = InMemoryBackend()
    handle = FailingTask(QuoteParams(amount=0)).start(backend=backend)
    backend.run_all()
    with pytest.raises(tasks.RunFailedError, match="card declined"):
        asyncio.run(handle.await_result(timeout=1))


# -- other backends ---------------------------------------------------------------------------


def test_wait_on_a_finished_immediate_run_returns_without_asking_the_backend() -> None:
    handle = QuoteTask(QuoteParams(amount=2)).start(backend=ImmediateBackend())
    assert handle.wait().total == 4


def test_wait_on_the_memory_backend_polls_until_the_run_is_done() -> None:
    backend = InMemoryBackend()
    handle = TotalsTask(QuoteParams(amount=1)).start(backend=backend)
    timer = threading.Timer(0.2, backend.run_all)
    timer.start()
    assert handle.wait(timeout=10) == [1, 2]
    timer.join()


def test_wait_raises_result_not_available_at_once_on_backends_without_results() -> None:
    backend = ThreadingBackend(max_workers=1)
    release = threading.Event()
    try:
        blocker = UntypedTask(QuoteParams(amount=1))
        blocker.run = lambda: release.wait(5)  # type: ignore[method-assign]
        handle = blocker.start(backend=backend)
        began = time.monotonic()
        with pytest.raises(tasks.ResultNotAvailableError, match="ThreadingBackend"):
            handle.wait(timeout=10)
        assert time.monotonic() - began < 1
    finally:
        release.set()
        backend.close()
    cloud = tasks.TaskHandle(id="x", name=QuoteTask.name, status=TaskStatus.READY)
    cloud.backend = CloudTasksBackend.__new__(CloudTasksBackend)
    with pytest.raises(tasks.ResultNotAvailableError, match="CloudTasksBackend"):
        cloud.wait()


def test_run_failed_error_keeps_the_old_four_argument_form() -> None:
    error = tasks.RunFailedError("builtins.ValueError", "boom", "tb", "some.task")
    assert str(error) == "builtins.ValueError: boom"
    assert error.status is None
    assert error.run_id == ""
    assert error.task_name == "some.task"


@pytest.mark.django_db(transaction=True)
def test_await_result_times_out_with_the_whole_timeout_in_its_message() -> None:
    handle = QuoteTask(QuoteParams(amount=5)).start(backend=DatabaseBackend())
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.3s \(it is ready\)"):
        asyncio.run(handle.await_result(timeout=0.3))
    assert time.monotonic() - began < 3


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_await_result_returns_at_once() -> None:
    handle = QuoteTask(QuoteParams(amount=5)).start(backend=DatabaseBackend())

    async def main() -> None:
        waiting = asyncio.ensure_future(handle.await_result())
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    began = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - began < 2


def test_wait_reads_again_when_sqlite_says_the_table_is_locked() -> None:
    from django.db import OperationalError

    class LockedOnce(InMemoryBackend):
        """Refuses the first read as a busy shared-cache SQLite does."""

        reads = 0

        def get_result(self, run_id: str) -> tasks.TaskHandle[Any]:
            self.reads += 1
            if self.reads == 1:
                raise OperationalError("database table is locked: django_generic_tasks_taskrun")
            return super().get_result(run_id)

    backend = LockedOnce()
    handle = TotalsTask(QuoteParams(amount=1)).start(backend=backend)
    backend.run_all()
    # A handle that has not seen the run finish yet:
    waiting = tasks.TaskHandle(handle.id, handle.name, TaskStatus.READY, backend)
    assert waiting.wait(timeout=5) == [1, 2]
    assert backend.reads == 2


def test_wait_raises_other_database_errors() -> None:
    from django.db import OperationalError

    class Down(InMemoryBackend):
        def get_result(self, run_id: str) -> tasks.TaskHandle[Any]:
            raise OperationalError("connection refused")

    handle = TotalsTask(QuoteParams(amount=1)).start(backend=Down())
    with pytest.raises(OperationalError, match="connection refused"):
        handle.wait(timeout=5)


class _EarlyEvent(threading.Event):
    """A notice event whose timed waits end a little before they were asked to (as a timed
    wait may), with no notice."""

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        time.sleep(max(0.0, timeout - 0.05))
        return False


class _EarlyNotices:
    def subscribe(self, run_id: str, event: threading.Event | None = None) -> threading.Event:
        return _EarlyEvent()

    def unsubscribe(self, run_id: str, event: threading.Event) -> None:
        return None


@pytest.mark.django_db(transaction=True)
def test_wait_reads_the_run_once_at_its_deadline_even_when_the_timed_wait_ends_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = DatabaseBackend()
    monkeypatch.setattr(backend, "finish_notices", _EarlyNotices)
    handle = QuoteTask(QuoteParams(amount=3)).start(backend=backend)
    with CaptureQueriesContext(connection) as queries, pytest.raises(TimeoutError):
        handle.wait(timeout=0.3)
    assert len(queries) == 2, [q["sql"][:60] for q in queries]


@pytest.mark.django_db(transaction=True)
def test_a_polling_wait_reads_the_run_once_at_its_deadline_even_when_its_sleep_ends_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_generic_tasks.core import results

    backend = DatabaseBackend()
    monkeypatch.setattr(backend, "finish_notices", lambda: None)  # polls, on every database
    handle = QuoteTask(QuoteParams(amount=3)).start(backend=backend)
    monkeypatch.setattr(results, "POLL_FIRST", 10.0)  # one sleep, bounded by the deadline
    real_sleep = time.sleep
    monkeypatch.setattr(results.time, "sleep", lambda seconds: real_sleep(max(0.0, seconds - 0.05)))
    with CaptureQueriesContext(connection) as queries, pytest.raises(TimeoutError):
        handle.wait(timeout=0.3)
    assert len(queries) == 2
