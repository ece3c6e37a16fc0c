"""``ThreadingBackend``: bounded pool, delay/eta, retries with backoff, priorities, DB
connections, error logging, shutdown, draining at interpreter exit, fork safety."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import TaskStatus
from django_generic_tasks.backends import ThreadingBackend
from tests.testapp.tasks import AddTask, AsyncEchoTask, FlakyTask, attempts, calls
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")
ROOT = Path(__file__).resolve().parents[2]


class Label(BaseModel):
    label: str = ""


log: list[tuple[str, str, float]] = []  # (label, thread name, time.time())
log_lock = threading.Lock()
gate = threading.Event()
waiting = threading.Event()


class Record(tasks.Task[Label]):
    """Records its label, thread and time; waits at the gate when the label says 'wait'."""

    name = "tests.threading.record"

    def run(self) -> None:
        if self.params.label == "wait":
            waiting.set()
            gate.wait(30)
        with log_lock:
            log.append((self.params.label, threading.current_thread().name, time.time()))


@pytest.fixture
def backend() -> Iterator[ThreadingBackend]:
    log.clear()
    gate.clear()
    waiting.clear()
    backend = ThreadingBackend(max_workers=2, drain_timeout=10)
    yield backend
    gate.set()
    backend.close(wait=True)


def drain(backend: ThreadingBackend) -> None:
    assert backend.wait_idle(30, include_scheduled=True)


def test_runs_tasks_on_worker_threads(backend: ThreadingBackend) -> None:
    handle = AddTask({"a": 1, "b": 2}).start(backend=backend)
    assert handle.status is TaskStatus.READY
    assert handle.name == "tests.add"
    drain(backend)
    assert calls == [("tests.add", 3)]


def test_async_tasks_are_awaited_on_worker_threads(backend: ThreadingBackend) -> None:
    AsyncEchoTask({"value": "v"}).start(backend=backend)
    drain(backend)
    assert calls == [("tests.async_echo", "v")]


def test_the_pool_is_bounded_by_max_workers(backend: ThreadingBackend) -> None:
    Record.start_many([{"label": str(n)} for n in range(40)], backend=backend)
    drain(backend)
    assert len(log) == 40
    assert {thread for _, thread, _ in log} <= {"tasks-worker-0", "tasks-worker-1"}
    workers = [t for t in threading.enumerate() if t.name.startswith("tasks-worker-")]
    assert len(workers) >= 2  # other tests' backends may still be draining


def test_a_delayed_run_does_not_start_before_it_is_due(backend: ThreadingBackend) -> None:
    due = time.time() + 0.1  # the run's run_after is at least this
    handle = Record({"label": "later"}).start(delay=timedelta(milliseconds=100), backend=backend)
    assert handle.status is TaskStatus.SCHEDULED
    drain(backend)
    ((label, _, ran_at),) = log
    assert label == "later"
    assert ran_at >= due


def test_an_eta_run_does_not_start_before_its_eta(backend: ThreadingBackend) -> None:
    eta = datetime.now(UTC) + timedelta(milliseconds=80)
    Record({"label": "eta"}).start(eta=eta, backend=backend)
    drain(backend)
    assert log[0][2] >= eta.timestamp()


def test_an_eta_in_the_past_runs_at_once(backend: ThreadingBackend) -> None:
    Record({"label": "past"}).start(eta=datetime(2000, 1, 1, tzinfo=UTC), backend=backend)
    drain(backend)
    assert [label for label, _, _ in log] == ["past"]


def test_failed_attempts_are_retried_after_their_backoff(backend: ThreadingBackend) -> None:
    times: list[float] = []

    def on_started(sender: Any, **kwargs: Any) -> None:
        if sender is FlakyTask:
            times.append(time.time())

    tasks.signals.task_started.connect(on_started)
    try:
        FlakyTask({"token": "t", "failures": 2}).start(backend=backend)
        drain(backend)
    finally:
        tasks.signals.task_started.disconnect(on_started)
    assert attempts["t"] == 3
    assert calls == [("tests.flaky", "t")]
    # backoff_base 0.01 s, factor 2, jitter keeps at least half: >= 5 ms, then >= 10 ms
    assert times[1] - times[0] >= 0.005
    assert times[2] - times[1] >= 0.01


def test_retries_stop_after_max_attempts(backend: ThreadingBackend) -> None:
    FlakyTask({"token": "t", "failures": 99}).start(backend=backend)
    drain(backend)
    assert attempts["t"] == FlakyTask.max_attempts
    assert calls == []


def test_higher_priority_runs_first(backend: ThreadingBackend) -> None:
    single = ThreadingBackend(max_workers=1)
    try:
        Record({"label": "wait"}).start(backend=single)
        assert waiting.wait(30)
        for label, priority in [("low", -5), ("high", 10), ("mid", 0), ("high2", 10)]:
            Record({"label": label}).start(priority=priority, backend=single)
        gate.set()
        drain(single)
    finally:
        single.close()
    assert [label for label, _, _ in log] == ["wait", "high", "high2", "mid", "low"]


def test_a_task_that_raises_in_a_thread_is_logged_with_name_and_run_id(
    backend: ThreadingBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="django_generic_tasks")
    handle = FlakyTask({"token": "discard"}).start(backend=backend)
    bad = FlakyTask({"token": "t", "failures": 99}).start(backend=backend)
    AddTask({"a": 1}).start(backend=backend)
    drain(backend)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage().startswith(f"Task tests.flaky (run {bad.id}) failed on attempt 4")
    assert errors[0].exc_info is not None
    assert any(handle.id in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert calls == [("tests.add", 1)]  # the pool kept working


def test_wait_idle_times_out_while_a_task_is_running(backend: ThreadingBackend) -> None:
    Record({"label": "wait"}).start(backend=backend)
    assert backend.wait_idle(0.05) is False
    gate.set()
    assert backend.wait_idle(30) is True


def test_after_close_no_task_is_accepted_and_due_later_runs_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = ThreadingBackend(max_workers=1)
    AddTask({"a": 1}).start(backend=backend)
    AddTask({"a": 2}).start(backend=backend, delay=timedelta(hours=1))
    backend.close(wait=True)
    assert calls == [("tests.add", 1)]
    assert any("1 delayed task run(s) were not due yet" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="shut down"):
        AddTask({"a": 3}).start(backend=backend)
    backend.close()  # closing twice is harmless


def test_close_before_first_use_is_harmless() -> None:
    ThreadingBackend().close()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "4"])
def test_max_workers_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_workers must be an integer >= 1"):
        ThreadingBackend(max_workers=bad)


# --- processes --------------------------------------------------------------------------------


def _script(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_")}
    env["PYTHONPATH"] = str(ROOT)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )


PRELUDE = """
    import sys, time, threading, os
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django_generic_tasks"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}},
        TASKS_BACKEND="django_generic_tasks.backends.ThreadingBackend",
        TASKS_BACKEND_OPTIONS={"max_workers": 2},
        USE_TZ=True,
    )
    django.setup()
    from pydantic import BaseModel
    import django_generic_tasks as tasks

    class P(BaseModel):
        n: int
"""


@pytest.mark.slow
def test_in_flight_runs_are_drained_at_interpreter_exit(tmp_path: Path) -> None:
    result = _script(
        tmp_path,
        PRELUDE
        + """
    class Slow(tasks.Task[P]):
        def run(self):
            time.sleep(0.01)
            with open("done.txt", "a") as out:
                out.write(f"{self.params.n}\\n")

    for n in range(30):
        Slow({"n": n}).start()
    print("exiting")
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exiting"
    done = sorted(int(line) for line in (tmp_path / "done.txt").read_text().split())
    assert done == list(range(30))


@pytest.mark.slow
def test_the_database_connection_is_closed_after_each_task(tmp_path: Path) -> None:
    result = _script(
        tmp_path,
        PRELUDE
        + """
    from django.db import connection, connections
    from django_generic_tasks.conf import get_backend

    wrappers = []

    class Query(tasks.Task[P]):
        def run(self):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            assert connection.connection is not None
            wrappers.append(connections["default"])

    for n in range(6):
        Query({"n": n}).start()
    assert get_backend().wait_idle(30)
    assert len(wrappers) == 6
    print(sum(w.connection is None for w in wrappers), len({id(w) for w in wrappers}))
    """,
    )
    assert result.returncode == 0, result.stderr
    closed, threads = result.stdout.split()
    assert closed == "6"
    assert 1 <= int(threads) <= 2


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_pool(tmp_path: Path) -> None:
    result = _script(
        tmp_path,
        PRELUDE
        + """
    import warnings
    from django_generic_tasks.conf import get_backend

    warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a threaded process

    class Mark(tasks.Task[P]):
        def run(self):
            with open(f"ran-{os.getpid()}-{self.params.n}", "w"):
                pass

    Mark({"n": 1}).start()
    assert get_backend().wait_idle(30)
    pid = os.fork()
    if pid == 0:
        Mark({"n": 2}).start()
        ok = get_backend().wait_idle(30)
        os._exit(0 if ok and os.path.exists(f"ran-{os.getpid()}-2") else 3)
    _, status = os.waitpid(pid, 0)
    Mark({"n": 3}).start()
    assert get_backend().wait_idle(30)
    print(os.waitstatus_to_exitcode(status), os.path.exists(f"ran-{os.getpid()}-3"))
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True"]


def test_close_warns_when_runs_outlast_the_drain_timeout(caplog: pytest.LogCaptureFixture) -> None:
    gate.clear()
    backend = ThreadingBackend(max_workers=1, drain_timeout=0.05)
    Record({"label": "wait"}).start(backend=backend)
    backend.close(wait=True)
    gate.set()
    assert any("still unfinished after 0.05s" in r.getMessage() for r in caplog.records)


def test_the_exit_hook_drains_every_live_backend() -> None:
    from django_generic_tasks.backends import threads

    backend = ThreadingBackend(max_workers=1)
    AddTask({"a": 5}).start(backend=backend)
    threads._drain_at_exit()
    assert backend._closed
    assert calls == [("tests.add", 5)]


def test_the_fork_hook_gives_each_backend_a_fresh_lock() -> None:
    from django_generic_tasks.backends import threads

    backend = ThreadingBackend(max_workers=1)
    old = backend._lock
    threads._after_fork_in_child()
    assert backend._lock is not old
    assert not backend._lock.locked()


@pytest.mark.django_db(transaction=True)
def test_tasks_using_the_database_get_their_connection_closed_afterwards() -> None:
    from django.db import connection, connections

    wrappers: list[Any] = []

    class Query(tasks.Task[Label]):
        def run(self) -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            wrappers.append(connections["default"])

    backend = ThreadingBackend(max_workers=1)
    try:
        Query({}).start(backend=backend)
        Query({}).start(backend=backend)
        drain(backend)
    finally:
        backend.close()
    assert len(wrappers) == 2
    for wrapper in wrappers:  # SQLite's in-memory test database cannot be closed
        assert wrapper.connection is None or wrapper.is_in_memory_db()


def test_a_task_raising_system_exit_is_logged_and_the_worker_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Quits(tasks.Task[Label]):
        def run(self) -> None:
            raise SystemExit(3)

    backend = ThreadingBackend(max_workers=1)
    try:
        handle = Quits({}).start(backend=backend)
        AddTask({"a": 9}).start(backend=backend)
        drain(backend)
    finally:
        backend.close()
    (record,) = [r for r in caplog.records if "raised outside" in r.getMessage()]
    assert f"(run {handle.id})" in record.getMessage()
    assert record.exc_info is not None
    assert calls == [("tests.add", 9)]
