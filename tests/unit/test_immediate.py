"""``ImmediateBackend``: runs at start(), awaits async tasks, follows the retry policy."""

from __future__ import annotations

import pytest

from django_generic_tasks import ResultNotAvailableError, TaskStatus
from django_generic_tasks.backends import ImmediateBackend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.status import new_run_id
from tests.testapp.tasks import AddTask, AsyncEchoTask, FlakyTask, attempts, calls


def test_start_runs_the_task_now_and_returns_the_result() -> None:
    handle = AddTask({"a": 2, "b": 5}).start(backend=ImmediateBackend())
    assert calls == [("tests.add", 7)]
    assert (handle.status, handle.result, handle.error, handle.attempts) == (
        TaskStatus.SUCCEEDED,
        7,
        None,
        1,
    )


def test_async_tasks_are_awaited() -> None:
    handle = AsyncEchoTask({"value": "x"}).start(backend=ImmediateBackend())
    assert (handle.status, handle.result) == (TaskStatus.SUCCEEDED, "x")


def test_failed_attempts_are_retried_at_once_until_success() -> None:
    handle = FlakyTask({"token": "t", "failures": 2}).start(backend=ImmediateBackend())
    assert (handle.status, handle.result, handle.attempts) == (TaskStatus.SUCCEEDED, "t", 3)
    assert attempts["t"] == 3


def test_sleep_between_retries_waits_out_the_backoff_and_still_succeeds() -> None:
    backend = ImmediateBackend(sleep_between_retries=True)
    handle = FlakyTask({"token": "t", "failures": 1}).start(backend=backend)
    assert (handle.status, handle.attempts) == (TaskStatus.SUCCEEDED, 2)


def test_a_task_failing_every_attempt_ends_failed_with_the_error_not_raised() -> None:
    handle = FlakyTask({"token": "t", "failures": 99}).start(backend=ImmediateBackend())
    assert handle.status is TaskStatus.FAILED
    assert handle.attempts == FlakyTask.max_attempts
    assert handle.error is not None
    assert handle.error.message == "failure 4"


def test_discard_on_ends_the_run_discarded() -> None:
    handle = FlakyTask({"token": "discard"}).start(backend=ImmediateBackend())
    assert (handle.status, handle.attempts) == (TaskStatus.DISCARDED, 1)


def test_an_unknown_task_name_fails_without_retry() -> None:
    request = EnqueueRequest(
        run_id=new_run_id(),
        task_name="no.such.task",
        params_json="{}",
        queue="default",
        priority=0,
        run_after=None,
        key=None,
        max_attempts=3,
        timeout=None,
    )
    handle = ImmediateBackend().enqueue(request)
    assert (handle.status, handle.attempts) == (TaskStatus.FAILED, 1)
    assert handle.error is not None
    assert handle.error.type.endswith("UnknownTaskError")


def test_handles_cannot_be_refreshed_because_results_are_not_kept() -> None:
    handle = AddTask({"a": 1}).start(backend=ImmediateBackend())
    with pytest.raises(ResultNotAvailableError, match="ImmediateBackend does not keep"):
        handle.refresh()


def test_priority_is_accepted_because_runs_happen_one_at_a_time() -> None:
    assert AddTask({"a": 1}).start(priority=50).status is TaskStatus.SUCCEEDED
