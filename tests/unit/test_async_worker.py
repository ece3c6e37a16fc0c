"""Async tasks on the database worker's event loop (issue 23, item 5), in-process: many at
once on one loop beside the thread pool, timeouts, cancel, progress, hooks, model refs, the
async ORM, sync-only middleware, the stall watchdog."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from django.test import override_settings
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.execution import cancellation
from django_generic_tasks.middleware import AttemptMiddleware
from django_generic_tasks.models import TaskRun
from django_generic_tasks.worker import Worker, WorkerOptions

pytestmark = pytest.mark.django_db(transaction=True)

seen: dict[str, Any] = {}
"""What the task bodies saw (threads, concurrency), reset per test."""
_lock = threading.Lock()


@pytest.fixture(autouse=True)
def _reset() -> None:
    seen.clear()
    seen.update(running=0, peak=0, threads=set(), hooks=[])


class NapParams(BaseModel):
    n: int = 0
    seconds: float = 0.2


class Nap(tasks.Task[NapParams]):
    """Awaits a sleep; counts how many naps run at once and on which threads."""

    name = "tests.async.nap"

    async def run(self) -> int:
        with _lock:
            seen["running"] += 1
            seen["peak"] = max(seen["peak"], seen["running"])
            seen["threads"].add(threading.current_thread().name)
        try:
            await asyncio.sleep(self.params.seconds)
        finally:
            with _lock:
                seen["running"] -= 1
        return self.params.n


class SyncNap(tasks.Task[NapParams]):
    """The same, sync: runs on the worker's threads."""

    name = "tests.async.sync_nap"

    def run(self) -> int:
        with _lock:
            seen["threads"].add(threading.current_thread().name)
        time.sleep(self.params.seconds)
        return self.params.n


class Slow(tasks.Task[NapParams]):
    """Awaits longer than its timeout; records that it was cancelled."""

    name = "tests.async.slow"
    timeout = 0.3

    async def run(self) -> int:
        try:
            await asyncio.sleep(self.params.seconds)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        return self.params.n


class Cancellable(tasks.Task[NapParams]):
    """Reports progress, then checks for a cancel every 10 ms for up to 20 s."""

    name = "tests.async.cancellable"

    async def run(self) -> int:
        self.report_progress(1, 10, "started")
        seen["started"] = self.context.run_id
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.check_cancelled()
            await asyncio.sleep(0.01)
        return self.params.n


class Progressing(tasks.Task[NapParams]):
    """Reports progress three times (the last one is kept and written at the end)."""

    name = "tests.async.progress"

    async def run(self) -> int:
        for done in (1, 2, 3):
            self.report_progress(done, 3, f"step {done}")
            await asyncio.sleep(0.01)
        return self.params.n


class UsesOrm(tasks.Task[NapParams]):
    """Counts and reads runs with Django's async ORM."""

    name = "tests.async.orm"

    async def run(self) -> int:
        count = await TaskRun.objects.acount()
        run = await TaskRun.objects.aget(pk=self.context.run_id)
        assert run.status == "running"
        return count


class Hooked(tasks.Task[NapParams]):
    """A sync hook (may use the ORM: run off the loop) and an async one."""

    name = "tests.async.hooked"

    async def run(self) -> int:
        if self.params.n < 0:
            raise ValueError("negative")
        return self.params.n

    def on_success(self, result: int) -> None:
        seen["hooks"].append(("success", result, TaskRun.objects.count() > 0))

    async def on_failure(self, error: Any) -> None:
        seen["hooks"].append(("failure", error.message))


class Blocking(tasks.Task[NapParams]):
    """The user's bug: a blocking sleep inside an async task."""

    name = "tests.async.blocking"

    async def run(self) -> int:
        time.sleep(self.params.seconds)
        return self.params.n


class SyncOnlyMiddleware(AttemptMiddleware):
    """Overrides only ``__call__``: async tasks' attempts stay on the threads."""

    def __call__(self, task: Any, attempt: Any) -> Any:
        seen.setdefault("wrapped", []).append(threading.current_thread().name)
        return self.next(task, attempt)


class BothPathsMiddleware(AttemptMiddleware):
    """Has both paths: counts which one each attempt took."""

    def __call__(self, task: Any, attempt: Any) -> Any:
        seen.setdefault("paths", []).append("sync")
        return self.next(task, attempt)

    async def __acall__(self, task: Any, attempt: Any) -> Any:
        seen.setdefault("paths", []).append("async")
        return await self.next(task, attempt)


def drain(**options: object) -> Worker:
    """Run an in-process worker on this thread until nothing is due (stopped after 60 s)."""
    defaults: dict[str, object] = {"once": True, "interval": 0.02, "concurrency": 2}
    defaults.update(options)
    worker = Worker(WorkerOptions(**defaults))  # type: ignore[arg-type]
    watchdog = threading.Timer(60, worker.stop)
    watchdog.start()
    try:
        worker.run(install_signals=False)
    finally:
        watchdog.cancel()
    return worker


def statuses() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in TaskRun.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_many_async_runs_are_awaited_at_once_on_one_loop_thread_beside_sync_ones() -> None:
    backend = DatabaseBackend()
    Nap.start_many([{"n": n, "seconds": 0.3} for n in range(200)], backend=backend)
    SyncNap.start_many([{"n": n, "seconds": 0.01} for n in range(10)], backend=backend)
    began = time.monotonic()
    drain(async_concurrency=100, concurrency=2, batch=50)
    took = time.monotonic() - began
    assert statuses() == {"succeeded": 210}
    assert seen["peak"] == 100  # never more than --async-concurrency at once
    loop_threads = {t for t in seen["threads"] if t == "tasks-worker-loop"}
    assert loop_threads == {"tasks-worker-loop"}
    assert {t for t in seen["threads"] if t.startswith("tasks-worker-")} >= {"tasks-worker-loop"}
    # 200 naps of 0.3 s, 100 at a time: about 0.6 s, far from 60 s one per thread.
    assert took < 20
    results = sorted(TaskRun.objects.filter(task_name=Nap.name).values_list("result", flat=True))
    assert results == sorted(range(200))


def test_with_async_concurrency_zero_async_runs_take_the_threads() -> None:
    Nap.start_many([{"n": n, "seconds": 0.01} for n in range(4)], backend=DatabaseBackend())
    drain(async_concurrency=0, concurrency=2)
    assert statuses() == {"succeeded": 4}
    assert all(t.startswith("tasks-worker-") and t != "tasks-worker-loop" for t in seen["threads"])


def test_an_async_run_past_its_timeout_is_cancelled_and_fails_with_a_timeout() -> None:
    handle = Slow(NapParams(n=1, seconds=5)).start(backend=DatabaseBackend())
    began = time.monotonic()
    drain(async_concurrency=10)
    assert time.monotonic() - began < 4
    run = TaskRun.objects.get(pk=handle.id)
    assert run.status == "failed"
    assert run.error_type.endswith("TaskTimeoutError")
    assert seen.get("cancelled") is True


def test_a_cancel_request_reaches_a_running_async_run() -> None:
    backend = DatabaseBackend()
    handle = Cancellable(NapParams(n=1)).start(backend=backend)
    worker = Worker(WorkerOptions(interval=0.02, concurrency=1, async_concurrency=5, lease=1.5))
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while "started" not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen.get("started") == handle.id
        handle.cancel()
        deadline = time.monotonic() + 20
        while TaskRun.objects.get(pk=handle.id).status == "running":
            assert time.monotonic() < deadline, "the run was never cancelled"
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(30)
    run = TaskRun.objects.get(pk=handle.id)
    assert run.status == "cancelled"
    assert run.progress["message"] == "started"


def test_progress_of_an_async_run_is_written_off_the_loop_and_the_last_report_kept() -> None:
    handle = Progressing(NapParams(n=3)).start(backend=DatabaseBackend())
    drain(async_concurrency=5)
    run = TaskRun.objects.get(pk=handle.id)
    assert run.status == "succeeded"
    assert run.progress["done"] == 3
    assert run.progress["message"] == "step 3"


def test_djangos_async_orm_works_in_async_runs_at_high_concurrency() -> None:
    UsesOrm.start_many([{"n": n} for n in range(300)], backend=DatabaseBackend())
    drain(async_concurrency=300, async_db_threads=3, batch=300)
    assert statuses() == {"succeeded": 300}


def test_sync_hooks_run_off_the_loop_and_async_ones_on_it() -> None:
    backend = DatabaseBackend()
    Hooked(NapParams(n=5)).start(backend=backend)
    Hooked(NapParams(n=-1)).start(backend=backend)
    drain(async_concurrency=5)
    assert sorted(seen["hooks"]) == [("failure", "negative"), ("success", 5, True)]


def test_a_middleware_with_only_a_sync_path_keeps_async_tasks_on_the_threads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = f"{__name__}.SyncOnlyMiddleware"
    with override_settings(TASKS_MIDDLEWARE=[path]), caplog.at_level(logging.INFO):
        Nap.start_many([{"n": n, "seconds": 0.01} for n in range(3)], backend=DatabaseBackend())
        drain(async_concurrency=10)
    assert statuses() == {"succeeded": 3}
    assert len(seen["wrapped"]) == 3
    assert "tasks-worker-loop" not in seen["wrapped"]
    assert "has no async path" in caplog.text


def test_a_middleware_with_both_paths_wraps_each_async_attempt_once_on_the_loop() -> None:
    path = f"{__name__}.BothPathsMiddleware"
    with override_settings(TASKS_MIDDLEWARE=[path]):
        backend = DatabaseBackend()
        Nap.start_many([{"n": n, "seconds": 0.01} for n in range(3)], backend=backend)
        SyncNap(NapParams(n=9, seconds=0)).start(backend=backend)
        drain(async_concurrency=10)
    assert statuses() == {"succeeded": 4}
    assert sorted(seen["paths"]) == ["async", "async", "async", "sync"]


def test_a_blocking_call_in_an_async_task_is_reported_while_it_blocks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = Blocking(NapParams(n=1, seconds=0.6)).start(backend=DatabaseBackend())
    with caplog.at_level(logging.WARNING, logger="django_generic_tasks.worker"):
        worker = drain(async_concurrency=5, async_stall_warning=0.2)
    assert TaskRun.objects.get(pk=handle.id).status == "succeeded"
    assert worker._async is not None
    assert worker._async.executor.stalls == 1
    assert f"task {Blocking.name} {handle.id}" in caplog.text
    assert "time.sleep(self.params.seconds)" in caplog.text
    assert "turned again" in caplog.text


def test_invalid_params_of_an_async_task_fail_the_run_without_retry() -> None:
    handle = Nap(NapParams(n=1)).start(backend=DatabaseBackend())
    TaskRun.objects.filter(pk=handle.id).update(params={"n": "not a number"})
    drain(async_concurrency=5)
    row = TaskRun.objects.get(pk=handle.id)
    assert row.status == "failed"
    assert row.attempt == 1


def test_a_stopping_worker_releases_async_runs_it_claimed_but_never_started() -> None:
    Nap.start_many([{"n": n, "seconds": 0.5} for n in range(30)], backend=DatabaseBackend())
    worker = Worker(WorkerOptions(interval=0.02, concurrency=1, async_concurrency=5, grace=10))
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
    thread.start()
    deadline = time.monotonic() + 20
    while seen["peak"] < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    thread.join(30)
    counts = statuses()
    assert counts.get("running", 0) == 0
    assert counts["succeeded"] >= 5
    assert counts["succeeded"] + counts.get("ready", 0) == 30


def test_cancellation_watch_is_undone_when_the_worker_stops() -> None:
    drain(async_concurrency=5)
    assert not cancellation.delivered_to(DatabaseBackend().name)


class DbThreads(tasks.Task[NapParams]):
    """Notes on which thread its ``sync_to_async`` calls ran (twice, in order)."""

    name = "tests.async.db_threads"

    async def run(self) -> int:
        from asgiref.sync import sync_to_async

        def where() -> str:
            TaskRun.objects.filter(pk=self.context.run_id).exists()
            return threading.current_thread().name

        first = await sync_to_async(where)()
        await asyncio.sleep(0.01)
        second = await sync_to_async(where)()
        with _lock:
            seen.setdefault("db_threads", set()).add(first)
            seen.setdefault("same_thread", []).append(first == second)
        return self.params.n


def test_async_runs_share_a_bounded_set_of_database_threads_one_per_attempt() -> None:
    from django_generic_tasks.support.compat import EXECUTOR_CONTEXTS, FAST_THREAD_SENSITIVE

    DbThreads.start_many([{"n": n} for n in range(120)], backend=DatabaseBackend())
    drain(async_concurrency=120, async_db_threads=3, batch=120)
    assert statuses() == {"succeeded": 120}
    assert all(seen["same_thread"])  # one attempt's calls stay on one thread
    if FAST_THREAD_SENSITIVE or EXECUTOR_CONTEXTS:
        assert len(seen["db_threads"]) <= 3
        assert all(name.startswith("tasks-worker-loop-db-") for name in seen["db_threads"])
    else:  # older asgiref: its one process-wide thread
        assert len(seen["db_threads"]) == 1


def test_an_async_run_longer_than_its_lease_completes_once_because_heartbeats_extend_it() -> None:
    # A lease of 0.3 s, a body of 1.2 s: without heartbeats covering async runs the worker's
    # own reaper would requeue the run (after 0.5 s) and run it a second time.
    handle = Nap(NapParams(n=1, seconds=1.2)).start(backend=DatabaseBackend())
    drain(lease=0.3, async_concurrency=5)
    run = TaskRun.objects.get(pk=handle.id)
    assert (run.status, run.attempt, run.result) == ("succeeded", 1, 1)
    assert seen["peak"] == 1
