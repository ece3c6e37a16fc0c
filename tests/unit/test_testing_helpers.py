"""``django_generic_tasks.testing``: capture starts, assert on them, run them, pytest fixture."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import django_generic_tasks as tasks
from django_generic_tasks import TaskStatus
from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend
from django_generic_tasks.conf import get_backend
from django_generic_tasks.testing import TaskCapture, capture_tasks
from tests.testapp.tasks import AddParams, AddTask, FlakyTask, attempts, calls
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")
ROOT = Path(__file__).resolve().parents[2]


class Chain(BaseModel):
    depth: int


class ChainTask(tasks.Task[Chain]):
    """Starts itself again until depth reaches 0, then starts an AddTask."""

    name = "tests.testing_helpers.chain"

    def run(self) -> None:
        if self.params.depth:
            ChainTask({"depth": self.params.depth - 1}).start()
        else:
            AddTask({"a": 100}).start()


def test_capture_tasks_captures_starts_without_running_them() -> None:
    with capture_tasks() as captured:
        handle = AddTask({"a": 1}).start()
        assert isinstance(get_backend(), InMemoryBackend)
    assert calls == []
    assert handle.status is TaskStatus.READY
    assert len(captured) == 1
    assert isinstance(get_backend(), ImmediateBackend)


def test_assert_started_with_a_model_or_a_dict_of_params() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1, "b": 2}).start()
    (match,) = captured.assert_started(AddTask, AddParams(a=1, b=2))
    assert match.task_class is AddTask
    assert match.params == AddParams(a=1, b=2)
    captured.assert_started(AddTask, {"a": 1, "b": 2})
    captured.assert_started(AddTask)


def test_assert_started_with_count() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1}).start()
        AddTask({"a": 1}).start()
        AddTask({"a": 2}).start()
    captured.assert_started(AddTask, {"a": 1}, count=2)
    captured.assert_started(AddTask, count=3)
    captured.assert_started(FlakyTask, count=0)


def test_assert_started_with_options() -> None:
    eta = datetime(2031, 1, 1, tzinfo=UTC)
    with capture_tasks() as captured:
        AddTask({"a": 1}).start(queue="emails", priority=5, key="k", eta=eta)
    captured.assert_started(AddTask, {"a": 1}, queue="emails", priority=5, key="k")
    captured.assert_started(AddTask, run_after=eta)
    with pytest.raises(AssertionError):
        captured.assert_started(AddTask, queue="default")


def test_assert_started_failure_lists_what_was_started() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1}).start(queue="emails")
        AddTask({"a": 2}).start(delay=timedelta(hours=1))
    with pytest.raises(AssertionError) as info:
        captured.assert_started(AddTask, {"a": 3})
    message = str(info.value)
    assert message.startswith("Expected tests.add with params AddParams(a=3, b=0) to be started.")
    assert "AddParams(a=1, b=0) (queue='emails')" in message
    assert "AddParams(a=2, b=0) (run_after=datetime.datetime(" in message


def test_assert_started_count_failure_says_how_many_times() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1}).start()
    with pytest.raises(AssertionError, match=r"started 2 time\(s\); it was started 1 time\(s\)"):
        captured.assert_started(AddTask, count=2)


def test_assert_started_failure_when_nothing_was_started() -> None:
    with capture_tasks() as captured, pytest.raises(AssertionError, match=r"\(none\)"):
        captured.assert_started(AddTask)


def test_assert_started_rejects_unknown_option_names() -> None:
    with capture_tasks() as captured, pytest.raises(TypeError, match=r"unknown option.*queu"):
        captured.assert_started(AddTask, queu="x")


def test_assert_started_rejects_invalid_expected_params() -> None:
    with capture_tasks() as captured, pytest.raises(ValidationError, match="a\n"):
        captured.assert_started(AddTask, {"a": "x"})


def test_assert_not_started() -> None:
    with capture_tasks() as captured:
        captured.assert_not_started()
        AddTask({"a": 1}).start()
        captured.assert_not_started(FlakyTask)
        with pytest.raises(AssertionError, match=r"Expected no task to be started; started:\n"):
            captured.assert_not_started()
        with pytest.raises(AssertionError, match=r"Expected no tests\.add to be started"):
            captured.assert_not_started(AddTask)


def test_started_filters_by_task_class() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1}).start()
        FlakyTask({"token": "t"}).start()
    assert [s.task_class for s in captured.started()] == [AddTask, FlakyTask]
    assert [s.task_class for s in captured.started(FlakyTask)] == [FlakyTask]


def test_run_all_runs_captured_starts_and_the_starts_they_make() -> None:
    with capture_tasks() as captured:
        ChainTask({"depth": 2}).start()
        outcomes = captured.run_all()
        assert len(captured) == 0
    assert [o.task_name for o in outcomes] == [ChainTask.name] * 3 + ["tests.add"]
    assert {o.status for o in outcomes} == {TaskStatus.SUCCEEDED}
    assert calls == [("tests.add", 100)]


def test_run_all_retries_failed_attempts_by_policy() -> None:
    with capture_tasks() as captured:
        handle = FlakyTask({"token": "t", "failures": 2}).start()
        outcomes = captured.run_all()
    assert [o.run_status for o in outcomes] == [
        TaskStatus.SCHEDULED,
        TaskStatus.SCHEDULED,
        TaskStatus.SUCCEEDED,
    ]
    assert (handle.status, handle.attempts, handle.result) == (TaskStatus.SUCCEEDED, 3, "t")


def test_run_all_without_retries_runs_each_attempt_once() -> None:
    with capture_tasks() as captured:
        handle = FlakyTask({"token": "t"}).start()
        (outcome,) = captured.run_all(retries=False)
    assert outcome.will_retry
    assert handle.status is TaskStatus.FAILED
    assert attempts["t"] == 1


def test_clear_forgets_captured_starts() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1}).start()
        captured.clear()
        captured.assert_not_started()
        assert captured.run_all() == []


def test_handles_of_captured_runs_refresh_after_run_all() -> None:
    with capture_tasks() as captured:
        handle = AddTask({"a": 4}).start()
        captured.run_all()
    assert handle.refresh().status is TaskStatus.SUCCEEDED


def test_the_in_memory_backend_deduplicates_keys_until_the_run_finishes() -> None:
    with capture_tasks() as captured:
        first = AddTask({"a": 1}).start(key="once")
        second = AddTask({"a": 2}).start(key="once")
        assert second.id == first.id
        captured.run_all()
        third = AddTask({"a": 3}).start(key="once")
    assert third.id != first.id
    assert calls == [("tests.add", 1)]


@pytest.mark.django_db
def test_capture_works_inside_a_test_transaction() -> None:
    from django.db import connection

    assert connection.in_atomic_block
    with capture_tasks() as captured:
        AddTask({"a": 1}).start()
    captured.assert_started(AddTask, {"a": 1})


def test_captured_tasks_fixture_comes_from_the_pytest_plugin(captured_tasks: TaskCapture) -> None:
    AddTask({"a": 1}).start()
    captured_tasks.assert_started(AddTask, {"a": 1})
    assert calls == []
    assert get_backend() is captured_tasks.backend


@pytest.mark.slow
def test_the_pytest_plugin_loads_and_works_without_django_settings(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel, ValidationError
            import django_generic_tasks as tasks

            class P(BaseModel):
                n: int

            class Ping(tasks.Task[P]):
                def run(self):
                    raise AssertionError("captured, never run")

            def test_captured(captured_tasks):
                Ping({"n": 1}).start()
                captured_tasks.assert_started(Ping, {"n": 1})
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


class Email(BaseModel):
    """An e-mail to send."""

    subject: str
    content: str
    recipients: list[str]


class SendEmail(tasks.Task[Email]):
    """Sends an e-mail."""

    name = "tests.testing_helpers.email"

    def run(self) -> None:
        calls.append((self.name, self.params.subject))


def sign_up(address: str) -> None:
    SendEmail({"subject": "Welcome", "content": "Hi!", "recipients": [address]}).start()


def test_assert_started_params_are_exact_so_a_partial_dict_is_rejected() -> None:
    with capture_tasks() as captured:
        sign_up("alice@example.com")
    with pytest.raises(ValidationError, match="content\n"):
        captured.assert_started(SendEmail, params={"subject": "Welcome"})


def test_assert_started_with_params_subset_compares_only_the_named_fields() -> None:
    with capture_tasks() as captured:
        sign_up("alice@example.com")
        (match,) = captured.assert_started(SendEmail, params_subset={"subject": "Welcome"})
        assert match.params.recipients == ["alice@example.com"]  # type: ignore[attr-defined]
        captured.assert_started(
            SendEmail, params_subset={"subject": "Welcome", "recipients": ["alice@example.com"]}
        )
        captured.run_all()
    assert calls == [(SendEmail.name, "Welcome")]


def test_params_subset_values_are_validated_as_their_fields() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1, "b": 2}).start()
    captured.assert_started(AddTask, params_subset={"b": "2"})  # "2" validates as the int 2
    with pytest.raises(ValueError, match=r"params_subset\['b'\] is not a valid AddParams.b: Input"):
        captured.assert_started(AddTask, params_subset={"b": "two"})


def test_params_subset_failure_lists_the_captured_params() -> None:
    with capture_tasks() as captured:
        sign_up("alice@example.com")
    with pytest.raises(AssertionError) as info:
        captured.assert_started(SendEmail, params_subset={"subject": "Goodbye"})
    message = str(info.value)
    assert message.startswith(
        "Expected tests.testing_helpers.email with params including {'subject': 'Goodbye'} "
        "to be started. Captured tests.testing_helpers.email starts:\n"
    )
    assert "Email(subject='Welcome', content='Hi!', recipients=['alice@example.com'])" in message


def test_params_subset_rejects_names_that_are_no_field() -> None:
    with capture_tasks() as captured, pytest.raises(TypeError, match=r"no field of Email: subjet"):
        captured.assert_started(SendEmail, params_subset={"subjet": "Welcome"})


def test_params_and_params_subset_cannot_be_combined() -> None:
    with capture_tasks() as captured, pytest.raises(TypeError, match="not both"):
        captured.assert_started(AddTask, {"a": 1}, params_subset={"a": 1})


def test_params_subset_counts_and_options_combine() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1, "b": 5}).start(queue="q1")
        AddTask({"a": 2, "b": 5}).start(queue="q1")
        AddTask({"a": 3, "b": 5}).start()
    captured.assert_started(AddTask, params_subset={"b": 5}, count=3)
    captured.assert_started(AddTask, params_subset={"b": 5}, queue="q1", count=2)


def test_the_readme_testing_example_with_params_subset() -> None:
    # README "Testing your tasks", with the line proposed for it.
    with capture_tasks() as captured:
        sign_up("alice@example.com")  # calls SendEmail(...).start()
        captured.assert_started(SendEmail, params_subset={"subject": "Welcome"})
        captured.run_all()  # runs them, and what they start (perform_enqueued_jobs)
    assert calls == [(SendEmail.name, "Welcome")]


def test_starts_stay_started_after_run_all_and_leave_pending() -> None:
    with capture_tasks() as captured:
        AddTask({"a": 1}).start()
        assert [s.params for s in captured.pending(AddTask)] == [AddParams(a=1)]
        captured.run_all()
        assert captured.pending() == []
        assert len(captured) == 0
        (started,) = captured.assert_started(AddTask, {"a": 1})
        assert [s.run_id for s in captured.started()] == [started.run_id]
        with pytest.raises(AssertionError, match="Expected no task to be started"):
            captured.assert_not_started()


def test_started_lists_what_runs_started_and_retries_are_not_starts() -> None:
    with capture_tasks() as captured:
        ChainTask({"depth": 1}).start()
        FlakyTask({"token": "started-once", "failures": 1}).start()
        captured.run_all()
        names = [s.task_class.name for s in captured.started()]
        assert names == [ChainTask.name, FlakyTask.name, ChainTask.name, AddTask.name]
        captured.assert_started(FlakyTask, count=1)
        captured.clear()
        assert captured.started() == []
