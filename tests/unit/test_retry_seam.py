"""The retry seam (``retry.settle``): execution decides, a backend's two hooks carry it out;
and the bridges' shared summary and error transport (``backends.bridge``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from django_generic_tasks import RunFailedError, TasksError
from django_generic_tasks.backends.bridge import (
    MARKER,
    apply_summary,
    read_summary,
    run_failed,
    summary_of,
)
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.handles import TaskHandle
from django_generic_tasks.core.status import ErrorInfo, TaskStatus
from django_generic_tasks.execution import Outcome
from django_generic_tasks.execution.attempts import FINAL, Decision
from django_generic_tasks.execution.retry import REFUSED_RETRY_DELAY, defer, final, settle

ERROR = ErrorInfo("app.Boom", "boom", "Traceback ...")


class Sink:
    """Records what the seam asked for, in order."""

    def __init__(self, *, fail_requeue: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail_requeue = fail_requeue

    def record(self, request: EnqueueRequest, outcome: Outcome) -> None:
        self.calls.append(("record", outcome.run_status))

    def requeue(self, request: EnqueueRequest) -> None:
        if self.fail_requeue:
            raise ConnectionError("broker down")
        self.calls.append(("requeue", (request.attempt, request.run_after)))


def request(attempt: int = 1) -> EnqueueRequest:
    return EnqueueRequest("run-1", "app.task", "{}", "default", 0, None, None, 3, None, attempt)


def outcome(status: TaskStatus, retry_at: datetime | None = None) -> Outcome:
    """An outcome; ``SCHEDULED``: a failed attempt the policy retries at ``retry_at``."""
    error = None if status is TaskStatus.SUCCEEDED else ERROR
    if status is TaskStatus.SCHEDULED:
        assert retry_at is not None
        return Outcome(
            "run-1", "app.task", 1, 3, TaskStatus.FAILED, "ok", error, Decision.retry_on(retry_at)
        )
    return Outcome("run-1", "app.task", 1, 3, status, "ok", error)


def test_a_final_outcome_is_recorded_and_nothing_is_requeued() -> None:
    for status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.DISCARDED):
        sink = Sink()
        assert settle(sink, request(), outcome(status)) is None
        assert sink.calls == [("record", status)]


def test_a_wanted_retry_is_recorded_then_requeued_as_the_next_attempt_at_retry_at() -> None:
    at = datetime.now(UTC) + timedelta(seconds=5)
    sink = Sink()
    retry = settle(sink, request(attempt=2), outcome(TaskStatus.SCHEDULED, at))
    assert retry is not None
    assert (retry.attempt, retry.run_after, retry.run_id) == (3, at, "run-1")
    assert sink.calls == [("record", TaskStatus.SCHEDULED), ("requeue", (3, at))]


def test_a_retry_that_cannot_be_requeued_ends_the_run_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(fail_requeue=True)
    assert settle(sink, request(), outcome(TaskStatus.SCHEDULED, datetime.now(UTC))) is None
    assert sink.calls == [("record", TaskStatus.SCHEDULED), ("record", TaskStatus.FAILED)]
    assert "could not be requeued" in caplog.text


def test_final_turns_a_wanted_retry_into_a_failure_and_keeps_the_rest() -> None:
    failed = final(outcome(TaskStatus.SCHEDULED, datetime.now(UTC)))
    assert (failed.status, failed.retry_at, failed.error) == (TaskStatus.FAILED, None, ERROR)
    assert (failed.decision, failed.run_status) == (FINAL, TaskStatus.FAILED)
    done = outcome(TaskStatus.SUCCEEDED)
    assert final(done) is done


def test_defer_requeues_the_same_attempt_later() -> None:
    sink = Sink()
    later = defer(sink, request(attempt=2), RuntimeError("busy"))
    assert later.attempt == 2
    assert later.run_after is not None
    assert later.run_after > datetime.now(UTC) + REFUSED_RETRY_DELAY / 2
    assert sink.calls == [("requeue", (2, later.run_after))]


def test_run_failed_error_is_a_tasks_error_that_rebuilds_from_its_args() -> None:
    exc = run_failed(ERROR, "app.task")
    assert isinstance(exc, TasksError)
    rebuilt = RunFailedError(*json.loads(json.dumps(exc.args)))  # as a JSON result store does
    assert (rebuilt.error, rebuilt.task_name, str(rebuilt)) == (ERROR, "app.task", "app.Boom: boom")
    assert str(RunFailedError()) == "A task run failed for good."


def test_a_summary_round_trips_with_its_error_as_fields() -> None:
    summary = summary_of(outcome(TaskStatus.FAILED))
    text = json.dumps(summary)
    assert "app.Boom: boom" not in text  # no "type: message" text to parse back
    read = read_summary(text, "run-1")
    assert read is not None
    handle = TaskHandle("run-1", "", TaskStatus.READY)
    apply_summary(handle, read)
    assert (handle.status, handle.error, handle.name) == (TaskStatus.FAILED, ERROR, "app.task")


def test_a_result_is_stored_in_its_json_form_or_as_its_repr() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    summary = summary_of(Outcome("r", "t", 1, 1, TaskStatus.SUCCEEDED, {1, 2}))
    assert summary["result"] == [1, 2]  # Pydantic's JSON form, as the database stores it
    summary = summary_of(Outcome("r", "t", 1, 1, TaskStatus.SUCCEEDED, Opaque()))
    assert summary["result"] == "<opaque>"


@pytest.mark.parametrize(
    "value",
    [
        None,
        [1, 2],
        "[1, 2]",
        "not json",
        {"status": "succeeded"},
        {MARKER: 2, "run_id": "run-1", "status": "succeeded"},
        {MARKER: 1, "run_id": "other", "status": "succeeded"},
        {MARKER: 1, "run_id": "run-1", "status": "exploded"},
        {MARKER: 1, "run_id": "run-1", "status": "succeeded", "attempt": "1"},
    ],
)
def test_anything_but_a_summary_of_this_run_is_not_read(value: Any) -> None:
    assert read_summary(value, "run-1") is None
