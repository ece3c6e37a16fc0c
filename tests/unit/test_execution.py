"""The one execution path: lookup, params, run (sync/async), retry policy, signals, logging."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import TaskStatus
from django_generic_tasks.core.status import new_run_id
from django_generic_tasks.execution import Attempt, Outcome, error_info, execute
from django_generic_tasks.execution.attempts import FINAL, Decision
from django_generic_tasks.signals import task_finished, task_started
from tests.testapp.tasks import (
    AddParams,
    AddTask,
    AsyncEchoTask,
    Permanent,
    attempts,
    calls,
)
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")


class Nothing(BaseModel):
    pass


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that slow tasks wait on; set at teardown so their threads end."""
    event = threading.Event()
    yield event
    event.set()


def run(name: str, params: Any, attempt: int = 1, **kwargs: Any) -> Outcome:
    return execute(
        Attempt(task_name=name, params=params, run_id="run-1", attempt=attempt, **kwargs)
    )


# --- success ----------------------------------------------------------------------------------


def test_success_reports_succeeded_with_the_result() -> None:
    outcome = run("tests.add", '{"a": 1, "b": 2}')
    assert outcome.status is TaskStatus.SUCCEEDED
    assert (outcome.result, outcome.error, outcome.retry_at) == (3, None, None)
    assert (outcome.run_id, outcome.task_name, outcome.attempt) == ("run-1", "tests.add", 1)
    assert not outcome.will_retry
    assert calls == [("tests.add", 3)]


@pytest.mark.parametrize("params", [b'{"a": 5}', {"a": 5}, AddParams(a=5)])
def test_params_may_be_json_bytes_dict_or_model(params: Any) -> None:
    assert run("tests.add", params).result == 5


def test_async_run_is_awaited() -> None:
    outcome = run("tests.async_echo", '{"value": "hi"}')
    assert (outcome.status, outcome.result) == (TaskStatus.SUCCEEDED, "hi")
    assert calls == [("tests.async_echo", "hi")]


def test_async_run_is_awaited_when_called_from_a_running_event_loop() -> None:
    async def inside_a_loop() -> Outcome:
        return run("tests.async_echo", '{"value": "loop"}')

    outcome = asyncio.run(inside_a_loop())
    assert (outcome.status, outcome.result) == (TaskStatus.SUCCEEDED, "loop")


def test_a_sync_run_returning_an_awaitable_is_awaited() -> None:
    class ReturnsCoroutine(tasks.Task[Nothing]):
        def run(self) -> Any:
            async def later() -> str:
                return "awaited"

            return later()

    assert run(ReturnsCoroutine.name, "{}").result == "awaited"


def test_the_attempt_request_is_a_frozen_keyword_only_value() -> None:
    attempt = Attempt(task_name=AsyncEchoTask.name, params={"value": "x"}, run_id="r")
    with pytest.raises(TypeError):
        Attempt(AsyncEchoTask.name, {"value": "x"}, "r")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        attempt.attempt = 2  # type: ignore[misc]
    assert execute(attempt).result == "x"


# --- failures and the retry policy ----------------------------------------------------------------


def test_a_retryable_failure_with_attempts_left_is_scheduled_after_backoff() -> None:
    before = datetime.now(UTC)
    outcome = run("tests.flaky", '{"token": "t"}')
    assert outcome.status is TaskStatus.FAILED  # how the attempt ended
    assert outcome.decision.retry  # what the policy decided, kept apart
    assert outcome.run_status is TaskStatus.SCHEDULED
    assert outcome.will_retry
    assert outcome.max_attempts == 4
    assert outcome.error is not None
    assert outcome.error.type == "tests.testapp.tasks.Transient"
    assert outcome.error.message == "failure 1"
    assert "Transient: failure 1" in outcome.error.traceback
    assert outcome.retry_at is not None
    # FlakyTask: backoff_base 0.01 s with jitter -> between 0.005 s and 0.01 s from now
    assert before + timedelta(seconds=0.005) <= outcome.retry_at
    assert outcome.retry_at <= datetime.now(UTC) + timedelta(seconds=0.01)


def test_the_attempt_after_the_last_failure_succeeds() -> None:
    assert run("tests.flaky", '{"token": "t"}', attempt=1).will_retry
    assert run("tests.flaky", '{"token": "t"}', attempt=2).will_retry
    outcome = run("tests.flaky", '{"token": "t"}', attempt=3)
    assert (outcome.status, outcome.result) == (TaskStatus.SUCCEEDED, "t")


def test_the_last_attempt_failing_is_final() -> None:
    outcome = run("tests.flaky", '{"token": "t", "failures": 9}', attempt=4)
    assert outcome.status is TaskStatus.FAILED
    assert (outcome.retry_at, outcome.will_retry) == (None, False)
    assert outcome.error is not None
    assert outcome.error.message == "failure 1"


def test_a_retry_policy_the_task_names_decides_instead_of_its_attributes() -> None:
    asked: list[tuple[int, int, str]] = []
    at = datetime(2030, 1, 1, tzinfo=UTC)

    class EveryOther:
        def decide(
            self, task_class: Any, attempt: int, max_attempts: int, error: BaseException
        ) -> Decision:
            asked.append((attempt, max_attempts, type(error).__name__))
            return Decision.retry_on(at) if attempt % 2 else FINAL

    class Policed(tasks.Task[Nothing]):
        max_attempts = 9
        retry_on = (ConnectionError,)  # the policy decides, not these attributes
        retry_policy = EveryOther()

        def run(self) -> None:
            raise ValueError("x")

    first, second = run(Policed.name, "{}", attempt=1), run(Policed.name, "{}", attempt=2)
    assert (first.status, first.decision, first.retry_at) == (
        TaskStatus.FAILED,
        Decision(True, at),
        at,
    )
    assert (second.status, second.decision) == (TaskStatus.FAILED, FINAL)
    assert asked == [(1, 9, "ValueError"), (2, 9, "ValueError")]


def test_max_attempts_argument_overrides_the_task_class() -> None:
    outcome = run("tests.flaky", '{"token": "t"}', max_attempts=1)
    assert (outcome.status, outcome.max_attempts) == (TaskStatus.FAILED, 1)


def test_discard_on_ends_the_run_as_discarded_without_retry() -> None:
    outcome = run("tests.flaky", '{"token": "discard-me"}')
    assert outcome.status is TaskStatus.DISCARDED
    assert outcome.error is not None
    assert outcome.error.type == f"{Permanent.__module__}.Permanent"
    assert not outcome.will_retry
    assert attempts["discard-me"] == 1


def test_an_exception_outside_retry_on_fails_at_once() -> None:
    class Picky(tasks.Task[Nothing]):
        max_attempts = 5
        retry_on = (ConnectionError,)

        def run(self) -> None:
            raise ValueError("bad data")

    outcome = run(Picky.name, "{}")
    assert outcome.status is TaskStatus.FAILED
    assert not outcome.will_retry  # a failed attempt's status is FAILED whether retried or not
    assert outcome.run_status is TaskStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "builtins.ValueError"


def test_unknown_task_name_fails_without_retry() -> None:
    outcome = run("no.such.task", "{}", max_attempts=5)
    assert outcome.status is TaskStatus.FAILED
    assert not outcome.will_retry
    assert outcome.error is not None
    assert outcome.error.type == "django_generic_tasks.exceptions.UnknownTaskError"
    assert "no.such.task" in outcome.error.message


@pytest.mark.parametrize(
    "params",
    ['{"token": 5}', '{"token": "t", "surprise": 1}', "not json", "[1, 2]", 42],
)
def test_invalid_params_fail_without_retry(params: Any) -> None:
    outcome = run("tests.flaky", params)
    assert outcome.status is TaskStatus.FAILED
    assert outcome.max_attempts == 4
    assert not outcome.will_retry
    assert outcome.error is not None
    assert attempts == {}


# --- signals and logging ------------------------------------------------------------------------


def test_signals_are_sent_around_each_attempt() -> None:
    seen: list[tuple[str, Any]] = []

    def on_started(sender: Any, **kwargs: Any) -> None:
        seen.append(("started", (sender, kwargs["run_id"], kwargs["attempt"])))
        assert isinstance(kwargs["task"], AddTask)

    def on_finished(sender: Any, **kwargs: Any) -> None:
        seen.append(("finished", (sender, kwargs["outcome"].status)))

    task_started.connect(on_started)
    task_finished.connect(on_finished)
    try:
        run("tests.add", '{"a": 1}', attempt=2)
        run("no.such.task", "{}")
    finally:
        task_started.disconnect(on_started)
        task_finished.disconnect(on_finished)
    assert seen == [
        ("started", (AddTask, "run-1", 2)),
        ("finished", (AddTask, TaskStatus.SUCCEEDED)),
        ("finished", (None, TaskStatus.FAILED)),
    ]


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django_generic_tasks"]


def test_success_is_logged_at_debug_with_task_name_and_run_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_generic_tasks")
    run("tests.add", '{"a": 1}')
    messages = [r.getMessage() for r in _records(caplog)]
    assert messages == [
        "Task tests.add (run run-1) attempt 1 started",
        "Task tests.add (run run-1) succeeded on attempt 1",
    ]


@pytest.mark.parametrize(
    ("name", "params", "attempt", "level", "text"),
    [
        ("tests.flaky", '{"token": "t"}', 1, logging.WARNING, "failed on attempt 1 of 4; retrying"),
        ("tests.flaky", '{"token": "t", "failures": 9}', 4, logging.ERROR, "failed on attempt 4"),
        ("tests.flaky", '{"token": "discard"}', 1, logging.INFO, "discarded on attempt 1"),
        ("no.such.task", "{}", 1, logging.ERROR, "cannot run"),
        ("tests.flaky", '{"token": 1}', 1, logging.ERROR, "cannot run"),
    ],
)
def test_failures_are_logged_with_task_name_and_run_id(
    caplog: pytest.LogCaptureFixture, name: str, params: str, attempt: int, level: int, text: str
) -> None:
    caplog.set_level(logging.INFO, logger="django_generic_tasks")
    run(name, params, attempt=attempt)
    (record,) = [r for r in _records(caplog) if r.levelno >= logging.INFO]
    assert record.levelno == level
    assert f"Task {name} (run run-1)" in record.getMessage()
    assert text in record.getMessage()
    assert (record.task_name, record.run_id, record.attempt) == (name, "run-1", attempt)  # type: ignore[attr-defined]
    if level >= logging.WARNING and name != "no.such.task" and "cannot" not in text:
        assert record.exc_info is not None


# --- timeouts -----------------------------------------------------------------------------------


def test_a_sync_task_over_its_timeout_fails_with_task_timeout_error(
    release: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    class Slow(tasks.Task[Nothing]):
        timeout = 0.05

        def run(self) -> None:
            release.wait(30)

    outcome = run(Slow.name, "{}")
    assert outcome.status is TaskStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "django_generic_tasks.exceptions.TaskTimeoutError"
    assert "timeout of 0.05s" in outcome.error.message
    assert any("left to finish in the background" in r.getMessage() for r in _records(caplog))


def test_an_async_task_over_its_timeout_fails_with_task_timeout_error() -> None:
    class SlowAsync(tasks.Task[Nothing]):
        timeout = 0.05

        async def run(self) -> None:
            await asyncio.sleep(30)

    outcome = run(SlowAsync.name, "{}")
    assert outcome.status is TaskStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "django_generic_tasks.exceptions.TaskTimeoutError"


def test_tasks_within_their_timeout_return_results_and_errors_normally() -> None:
    class Quick(tasks.Task[Nothing]):
        timeout = 30

        def run(self) -> str:
            return "done"

    class QuickAsync(tasks.Task[Nothing]):
        timeout = 30

        async def run(self) -> str:
            return "async done"

    class QuickFail(tasks.Task[Nothing]):
        timeout = 30

        def run(self) -> None:
            raise KeyError("k")

    assert run(Quick.name, "{}").result == "done"
    assert run(QuickAsync.name, "{}").result == "async done"
    failed = run(QuickFail.name, "{}")
    assert failed.error is not None
    assert failed.error.type == "builtins.KeyError"


# --- helpers ------------------------------------------------------------------------------------


def test_error_info_names_the_qualified_type_and_message() -> None:
    try:
        raise Permanent("nope")
    except Permanent as exc:
        info = error_info(exc)
    assert str(info) == "tests.testapp.tasks.Permanent: nope"
    assert "raise Permanent" in info.traceback


def test_run_ids_are_unique_uuid7_strings() -> None:
    ids = {new_run_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 36 and i[14] == "7" and i[19] in "89ab" for i in ids)


def test_an_async_failure_inside_a_running_event_loop_is_reported() -> None:
    class AsyncBoom(tasks.Task[Nothing]):
        async def run(self) -> None:
            raise LookupError("async boom")

    async def inside_a_loop() -> Outcome:
        return run(AsyncBoom.name, "{}")

    outcome = asyncio.run(inside_a_loop())
    assert outcome.status is TaskStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "builtins.LookupError"
