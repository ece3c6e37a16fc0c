"""Caller data in logs and terminals, and the commands' arguments (issue 21, items 6, 7, 11
and 12): each test performs the attack or the mistake, and fails if the hole reopens."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.conf import override_backend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.models import TaskRun
from django_generic_tasks.support.text import printable
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.testapp.models import Country
from tests.unit.test_dashboard import finish_runs

pytestmark = pytest.mark.django_db

FORGED = "ERROR Task app.tasks.Payment (run 0000) succeeded: paid 1,000,000 to mallory"


class CountryParams(BaseModel):
    country: tasks.ModelRef[Country]


class CountryTask(tasks.Task[CountryParams]):
    """Takes a country by its string primary key."""

    name = "tests.logs.country"

    def run(self) -> str:
        return self.params.country.code


@pytest.fixture
def plain_log() -> Iterator[io.StringIO]:
    """The package's records as a plain-text log file shows them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("django_generic_tasks")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.mark.django_db(transaction=True)  # the worker's heartbeat thread commits its own rows
def test_a_string_pk_with_a_newline_forges_no_worker_log_line(plain_log: io.StringIO) -> None:
    with override_backend(DatabaseBackend()):
        response = Client().post(
            "/api/tasks/tests.logs.country/start",
            {"country": f"x\n{FORGED}"},
            content_type="application/json",
        )
        # Over HTTP a missing row is refused before anything starts (issue 21, item 1) ...
        assert response.status_code == 403
        assert not TaskRun.objects.exists()
        # ... but code may still start a run with a caller's string (a view, a webhook).
        handle = CountryTask(CountryParams.model_validate({"country": f"x\n{FORGED}"})).start(
            on_commit=False
        )
    Worker(WorkerOptions(once=True, interval=0.02)).run(install_signals=False)
    run = TaskRun.objects.get(pk=handle.id)
    assert run.status == TaskStatus.DISCARDED
    lines = plain_log.getvalue().splitlines()
    assert any("discarded" in line and "x\\n" in line for line in lines), lines
    assert not any(line.startswith(FORGED) for line in lines)
    assert "\n" not in run.error_message  # the stored message quotes the pk too


def test_control_characters_in_log_arguments_are_escaped(plain_log: io.StringIO) -> None:
    error = ValueError("boom\r\n\x1b[2J\u2028INFO fake")
    logging.getLogger("django_generic_tasks").warning("failed: %s (%s)", error, "a\nb")
    logging.getLogger("django_generic_tasks.worker").warning("worker: %s", "c\nd")
    text = plain_log.getvalue()
    assert text.count("\n") == 2  # one line per record
    assert "boom\\r\\n\\x1b[2J\\u2028INFO fake" in text
    assert printable("tab\there") == "tab\\there"


def test_tasks_status_prints_no_terminal_escapes() -> None:
    (run_id,) = finish_runs([TaskStatus.FAILED])
    escape = "\x1b[2J\x1b[H\x1b]0;pwn\x07\x9b31m"
    TaskRun.objects.filter(pk=run_id).update(error_message=escape, queue="q\x1b[1m")
    out = io.StringIO()
    call_command("tasks_status", stdout=out)
    text = out.getvalue()
    assert run_id in text
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in text)
    assert "\\x1b[2J\\x1b[H\\x1b]0;pwn\\x07" in text


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("tasks_prune", ["--older-than", "99999999999w"], "too long an age"),
        ("tasks_prune", ["--older-than", "7d", "--batch", str(10**20)], "--batch must be at most"),
        ("tasks_prune", ["--older-than", "7d", "--database", "nope"], "'nope' is not a"),
        ("tasks_status", ["--failures", str(10**20)], "--failures must be at most"),
        ("tasks_status", ["--failures", "-1"], "--failures must be at least 0"),
        ("tasks_status", ["--database", "nope"], "'nope' is not a configured database"),
        ("tasks_worker", ["--once", "--database", "nope"], "'nope' is not a configured database"),
        ("tasks_worker", ["--once", "--queue", ""], "--queue names no queue"),
        ("tasks_worker", ["--once", "--queue", " , "], "--queue names no queue"),
        ("tasks_worker", ["--once", "--batch", str(10**20)], "--batch must be at most"),
        ("tasks_worker", ["--once", "--lease", "1e300"], "--lease must be at most"),
        ("tasks_scheduler", ["--database", "nope"], "'nope' is not a configured database"),
    ],
)
def test_commands_refuse_bad_numbers_and_names_with_a_command_error(
    command: str, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())


def test_an_empty_queue_option_never_reaches_every_queue() -> None:
    CountryTask(CountryParams(country="FR")).start(backend=DatabaseBackend(), queue="mail")
    with pytest.raises(CommandError):
        call_command("tasks_worker", "--queue", "", "--once", stdout=io.StringIO())
    assert TaskRun.objects.get().status == TaskStatus.READY
    assert store.using().observations.queue_depths(datetime.now(UTC))[0].waiting == 1
