"""Which queues live workers serve (issue 22, items 3 and 4): ``tasks_worker --exclude-queue``,
and a queue with due runs that no live worker serves, flagged by ``tasks_status`` and the
dashboard with how long its runs have waited."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.models import TaskRun
from django_generic_tasks.store.workers import queues_field, serves
from tests.testapp.tasks import AddTask

URL = "/admin/django_generic_tasks/dashboard/"


def status(*args: str) -> str:
    out = StringIO()
    call_command("tasks_status", *args, stdout=out)
    return out.getvalue()


def waiting_in(queue: str, minutes: int = 3) -> None:
    """One due run in ``queue`` that has waited ``minutes``."""
    AddTask({"a": 1}).start(backend=DatabaseBackend(), queue=queue)
    TaskRun.objects.filter(queue=queue).update(
        run_after=datetime.now(UTC) - timedelta(minutes=minutes)
    )


def worker_serving(queues: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
    now = datetime.now(UTC)
    info = store.WorkerInfo("web-1:7:ab", "web-1", 7, queues, 4, 0, now, exclude)
    store.using().workers.beat(info, 30, now)


def test_serves_reads_included_and_excluded_queues() -> None:
    assert serves("", "anything")
    assert serves(queues_field(("a", "b")), "a")
    assert not serves(queues_field(("a", "b")), "c")
    every_but_webhooks = queues_field((), ("webhooks",))
    assert every_but_webhooks == "!webhooks"
    assert serves(every_but_webhooks, "default")
    assert not serves(every_but_webhooks, "webhooks")


@pytest.mark.django_db
def test_tasks_status_flags_a_mistyped_queue_no_worker_serves_with_its_age() -> None:
    waiting_in("webhook")  # the workers serve "webhooks"
    waiting_in("webhooks")
    worker_serving(("webhooks",))
    text = status()
    flagged = [line for line in text.splitlines() if line.startswith("! queue")]
    assert len(flagged) == 1, text
    assert flagged[0].startswith("! queue 'webhook': 1 due run(s) waiting for 3.0m")
    assert "no live worker serves it" in flagged[0]
    queues = {q["queue"]: q for q in json.loads(status("--json"))["queues"]}
    assert (queues["webhook"]["served"], queues["webhooks"]["served"]) == (False, True)


@pytest.mark.django_db
def test_tasks_status_flags_every_waiting_queue_when_no_worker_is_alive() -> None:
    waiting_in("default")
    assert "! queue 'default'" in status()


@pytest.mark.django_db
def test_an_excluded_queue_is_unserved_and_the_others_are_served() -> None:
    waiting_in("webhooks")
    waiting_in("reports")
    worker_serving(exclude=("webhooks",))
    queues = {q["queue"]: q["served"] for q in json.loads(status("--json"))["queues"]}
    assert queues == {"webhooks": False, "reports": True}
    (worker,) = json.loads(status("--json"))["workers"]
    assert (worker["queues"], worker["exclude_queues"]) == ([], ["webhooks"])


@pytest.mark.django_db
def test_dashboard_flags_a_queue_no_worker_serves(admin_client: Client) -> None:
    waiting_in("webhook")
    waiting_in("default")
    worker_serving(("default",))
    page = admin_client.get(URL, {"partial": "1"}).content.decode()
    assert page.count("no worker serves this queue") == 1
    assert "no worker serves this queue: its runs wait 3 min" in page


@pytest.mark.django_db(transaction=True)
def test_claim_with_exclusions_takes_every_other_queue() -> None:
    for queue in ("default", "webhooks", "reports"):
        AddTask({"a": 1}).start(backend=DatabaseBackend(), queue=queue)
    runs = store.for_connection(connection)
    claimed = runs.queue.claim("w", (), 10, 30, datetime.now(UTC), ("webhooks",))
    assert sorted(run.queue for run in claimed) == ["default", "reports"]
    only = runs.queue.claim("w", ("webhooks", "reports"), 10, 30, datetime.now(UTC), ("reports",))
    assert [run.queue for run in only] == ["webhooks"]


@pytest.mark.django_db(transaction=True)
def test_worker_exclude_queue_serves_every_queue_but_these() -> None:
    for queue in ("default", "webhooks", "reports", "mail"):
        AddTask({"a": 1}).start(backend=DatabaseBackend(), queue=queue)
    call_command(
        "tasks_worker",
        "--once",
        "--exclude-queue",
        "webhooks",
        "--exclude-queue=mail,",
        verbosity=0,
    )
    done = dict(TaskRun.objects.values_list("queue", "status"))
    assert done == {
        "default": "succeeded",
        "reports": "succeeded",
        "webhooks": "ready",
        "mail": "ready",
    }


def test_worker_refuses_a_queue_both_included_and_excluded() -> None:
    with pytest.raises(CommandError, match="--exclude-queue names a queue --queue also names: a"):
        call_command("tasks_worker", "--queue", "a,b", "--exclude-queue", "a", verbosity=0)
