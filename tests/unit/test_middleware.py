"""The attempt pipeline: a chain of middleware built once per task class and backend, in the
documented order, holding only what applies; ``TASKS_MIDDLEWARE`` adds users' middleware,
which can see, replace or skip an attempt."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import CapacityExceededError, TaskStatus
from django_generic_tasks.backends import ImmediateBackend
from django_generic_tasks.execution import (
    Attempt,
    Outcome,
    cancellation,
    execute,
    progress,
    timeouts,
)
from django_generic_tasks.execution.progress import Progress, register_sink, unregister_sink
from django_generic_tasks.middleware import AttemptMiddleware, Chain, Handler, chains, forget_chains
from django_generic_tasks.signals import task_finished
from tests.testapp.tasks import AddParams, AddTask, calls
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry", "fresh_chains")

HERE = __name__
seen: list[tuple[str, Any]] = []
built: list[tuple[Any, str]] = []


@pytest.fixture
def fresh_chains() -> Iterator[None]:
    forget_chains()
    seen.clear()
    built.clear()
    yield
    forget_chains()


class Recorder(AttemptMiddleware):
    def __call__(self, task: tasks.Task[Any], attempt: Attempt) -> Outcome:
        seen.append(("before", attempt.attempt))
        outcome = self.next(task, attempt)
        seen.append(("after", outcome.status))
        return outcome


class Replacer(AttemptMiddleware):
    def __call__(self, task: tasks.Task[Any], attempt: Attempt) -> Outcome:
        return dataclasses.replace(self.next(task, attempt), result="replaced")


class NotNow(AttemptMiddleware):
    def __call__(self, task: tasks.Task[Any], attempt: Attempt) -> Outcome:
        raise CapacityExceededError("not now")


class CountsBuilds(AttemptMiddleware):
    def __init__(self, next: Handler, chain: Chain) -> None:
        built.append((chain.task_class, chain.backend))
        super().__init__(next, chain)


class Nothing(BaseModel):
    pass


class Everything(tasks.Task[Nothing, int]):
    """A timed sync task with a hook and a result type: most built-ins apply."""

    timeout = 30

    def run(self) -> int:
        return 1

    def on_success(self, result: Any) -> None:
        seen.append(("on_success", result))


def attempt_of(name: str, backend: str = "test", **fields: Any) -> Attempt:
    return Attempt(
        task_name=name, params=fields.pop("params", {"a": 1}), run_id="r", backend=backend, **fields
    )


def names(task_class: type[tasks.Task[Any]], backend: str = "test") -> list[str]:
    """The classes of the composed chain of ``task_class`` on ``backend``, outermost first."""
    handler: Any = chains[backend][task_class]
    found = []
    while isinstance(getattr(handler, "__self__", None), AttemptMiddleware):
        found.append(type(handler.__self__).__name__)
        handler = handler.__self__.next
    return found


def test_a_plain_tasks_chain_holds_only_what_applies_to_it() -> None:
    assert execute(attempt_of(AddTask.name)).result == 1
    assert names(AddTask) == []  # nobody listens to task_started / task_finished


def test_connecting_a_signal_receiver_puts_the_signals_step_in_the_chains() -> None:
    from django_generic_tasks.signals import task_finished

    finished: list[Any] = []

    def receiver(sender: Any, outcome: Any, **kwargs: Any) -> None:
        finished.append(outcome.result)

    assert execute(attempt_of(AddTask.name)).result == 1
    task_finished.connect(receiver)
    try:
        assert execute(attempt_of(AddTask.name)).result == 1
        assert names(AddTask) == ["SignalsMiddleware"]
        assert finished == [1]
    finally:
        task_finished.disconnect(receiver)
    execute(attempt_of(AddTask.name))
    assert names(AddTask) == []
    assert finished == [1]


@override_settings(TASKS_MIDDLEWARE=[f"{HERE}.Recorder"])
def test_the_chain_follows_the_documented_order_with_users_middleware_in_the_middle() -> None:
    from django_generic_tasks.signals import task_started

    def receiver(**kwargs: Any) -> None:
        pass

    task_started.connect(receiver)
    try:
        outcome = execute(attempt_of(Everything.name, params={}))
        assert (outcome.status, outcome.result) == (TaskStatus.SUCCEEDED, 1)
        assert names(Everything) == [
            "TimeoutMiddleware",
            "Recorder",
            "SignalsMiddleware",
            "HooksMiddleware",
            "ResultValidationMiddleware",
        ]
    finally:
        task_started.disconnect(receiver)
    assert seen == [("before", 1), ("on_success", 1), ("after", TaskStatus.SUCCEEDED)]


def test_a_chain_is_built_once_per_task_class_and_backend_and_again_when_the_setting_changes() -> (
    None
):
    with override_settings(TASKS_MIDDLEWARE=[f"{HERE}.CountsBuilds"]):
        for _ in range(3):
            execute(attempt_of(AddTask.name, "a"))
        execute(attempt_of(AddTask.name, "b"))
        assert built == [(AddTask, "a"), (AddTask, "b")]
    with override_settings(TASKS_MIDDLEWARE=[f"{HERE}.CountsBuilds", f"{HERE}.Recorder"]):
        execute(attempt_of(AddTask.name, "a"))
    assert built == [(AddTask, "a"), (AddTask, "b"), (AddTask, "a")]
    assert seen == [("before", 1), ("after", TaskStatus.SUCCEEDED)]


@override_settings(TASKS_MIDDLEWARE=[f"{HERE}.Replacer"])
def test_a_users_middleware_can_replace_the_outcome_the_backend_records() -> None:
    handle = AddTask({"a": 2}).start(backend=ImmediateBackend())
    assert (handle.status, handle.result) == (TaskStatus.SUCCEEDED, "replaced")


@override_settings(TASKS_MIDDLEWARE=[f"{HERE}.NotNow"])
def test_a_users_middleware_can_skip_the_attempt_before_the_task_runs() -> None:
    with pytest.raises(CapacityExceededError, match="not now"):
        execute(attempt_of(AddTask.name))
    assert calls == []  # run() never ran


@override_settings(TASKS_MIDDLEWARE=[f"{HERE}.Recorder"])
def test_attempts_that_cannot_run_skip_users_middleware_but_are_still_signalled() -> None:
    finished: list[Any] = []

    def on_finished(sender: Any, **kwargs: Any) -> None:
        finished.append((sender, kwargs["task"], kwargs["outcome"].status))

    task_finished.connect(on_finished)
    try:
        outcome = execute(attempt_of("no.such.task"))
    finally:
        task_finished.disconnect(on_finished)
    assert outcome.status is TaskStatus.FAILED
    assert seen == []
    assert finished == [(None, None, TaskStatus.FAILED)]


@override_settings(TASKS_MIDDLEWARE=["no.such.Middleware"])
def test_a_middleware_path_that_does_not_import_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"no\.such\.Middleware"):
        execute(attempt_of(AddTask.name))


def test_the_progress_middleware_joins_the_chains_of_a_backend_while_it_has_a_sink() -> None:
    class Sink:
        def __init__(self) -> None:
            self.finished: list[str] = []

        def report(self, run_id: str, progress: Progress) -> None:
            pass

        def finish(self, run_id: str) -> None:
            self.finished.append(run_id)

    sink = Sink()
    register_sink("with-sink", sink)
    try:
        execute(attempt_of(AddTask.name, "with-sink"))
        assert "ProgressMiddleware" in names(AddTask, "with-sink")
        assert sink.finished == ["r"]
    finally:
        unregister_sink("with-sink", sink)
    execute(attempt_of(AddTask.name, "with-sink"))
    assert "ProgressMiddleware" not in names(AddTask, "with-sink")


def test_the_cancellation_middleware_stops_a_run_asked_to_stop_before_it_starts() -> None:
    cancellation.watch("watched")
    cancellation.request("r")
    try:
        outcome = execute(attempt_of(AddTask.name, "watched"))
        assert "CancellationMiddleware" in names(AddTask, "watched")
    finally:
        cancellation.clear("r")
        cancellation.stop_watching("watched")
    assert (outcome.status, outcome.will_retry) == (TaskStatus.CANCELLED, False)
    assert calls == []  # run() never ran
    assert not cancellation.is_requested("r")
    execute(attempt_of(AddTask.name, "watched"))
    assert "CancellationMiddleware" not in names(AddTask, "watched")


def test_cancel_progress_and_timeout_state_lives_in_one_object_per_process() -> None:
    own = cancellation.CancelRequests()
    own.request("r")
    assert own.is_requested("r")
    assert not cancellation.is_requested("r")  # this process's requests are another object
    cancellation.request("r")
    try:
        assert cancellation.requests.is_requested("r")
    finally:
        cancellation.clear("r")
    sinks = progress.ProgressSinks()
    sinks.register("own", progress.ThrottledProgressWriter(lambda run_id, report: None))
    assert sinks.sink_for("own") is not None
    assert progress.sink_for("own") is None
    assert timeouts.abandoned_threads() == timeouts.abandoned.count


def test_the_timeout_middleware_refuses_from_the_process_abandoned_threads() -> None:
    class Timed(tasks.Task[AddParams]):
        name = "tests.middleware.timed"
        timeout = 5

        def run(self) -> int:
            return self.params.a

    limit = 2
    with override_settings(TASKS_MAX_ABANDONED_THREADS=limit):
        for _ in range(limit):
            timeouts.abandoned.left()
        try:
            with pytest.raises(CapacityExceededError):
                execute(attempt_of(Timed.name, "ImmediateBackend"))
        finally:
            for _ in range(limit):
                timeouts.abandoned.ended()
        assert execute(attempt_of(Timed.name, "ImmediateBackend")).result == 1
