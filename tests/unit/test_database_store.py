"""The run store on every database: claim limits, concurrent claims, keys scoped per task,
values too long for their column, stats."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.exceptions import InvalidOptionError
from django_generic_tasks.models import TaskRun
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db(transaction=True)


class PingParams(BaseModel):
    host: str = "localhost"


class PingTask(tasks.Task[PingParams]):
    """The app's own task that uses the key ``ping-42``."""

    name = "tests.db.ping"

    def run(self) -> str:
        return self.params.host


def runs() -> store.RunStore:
    """The store on this thread's connection."""
    return store.for_connection(connection)


def test_claim_with_a_limit_returns_exactly_that_many_of_more_due_runs() -> None:
    AddTask.start_many([{"a": i} for i in range(7)], backend=DatabaseBackend())
    claimed = runs().queue.claim("w", (), 3, 30, datetime.now(UTC))
    assert len(claimed) == 3
    assert TaskRun.objects.filter(status="running").count() == 3
    assert len(runs().queue.claim("w2", (), 10, 30, datetime.now(UTC))) == 4


# SQLite: a file database (see tests/settings.py), where a second writer waits its turn.
CLAIM_DB = "sqlite_file" if "sqlite_file" in settings.DATABASES else "default"


@pytest.mark.django_db(transaction=True, databases=sorted({"default", CLAIM_DB}))
def test_a_run_locked_by_one_claim_is_skipped_by_a_concurrent_claim() -> None:
    """PostgreSQL and MariaDB skip rows another open claim locked (``SKIP LOCKED``) instead
    of waiting for it; SQLite has one writer, so the second claim waits for the first to
    commit. Either way no run is claimed twice and none is lost."""
    claim_db = CLAIM_DB
    handles = AddTask.start_many([{"a": i} for i in range(5)], backend=DatabaseBackend(claim_db))
    first_claimed = threading.Event()
    second_done = threading.Event()
    second: list[str] = []
    errors: list[BaseException] = []

    def claim_meanwhile() -> None:
        try:
            first_claimed.wait(10)
            claimed = store.using(claim_db).queue.claim("b", (), 10, 30, datetime.now(UTC))
            second.extend(r.id for r in claimed)
            second_done.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections[claim_db].close()

    thread = threading.Thread(target=claim_meanwhile)
    thread.start()
    sqlite = connection.vendor == "sqlite"
    with transaction.atomic(using=claim_db):
        first = [r.id for r in store.using(claim_db).queue.claim("a", (), 2, 30, datetime.now(UTC))]
        first_claimed.set()
        # Kept open while the other claim runs: it holds the locks of the first two runs.
        done_while_open = second_done.wait(0.5 if sqlite else 10)
    thread.join(30)
    assert not errors, errors
    assert done_while_open is not sqlite
    assert len(first) == 2
    assert not set(first) & set(second)
    assert set(first) | set(second) == {h.id for h in handles}


def test_a_key_another_task_took_does_not_hide_this_tasks_run() -> None:
    backend = DatabaseBackend()
    other = AddTask({"a": 1}).start(backend=backend, key="ping-42")
    ping = PingTask({}).start(backend=backend, key="ping-42")
    assert ping.id != other.id
    assert TaskRun.objects.get(pk=ping.id).task_name == "tests.db.ping"
    again = PingTask({}).start(backend=backend, key="ping-42")
    assert again.id == ping.id
    [bulk] = backend.enqueue_many([EnqueueRequest.for_task(PingTask({}), key="ping-42")])
    assert bulk.id == ping.id
    assert TaskRun.objects.count() == 2


def test_keys_differing_only_in_case_are_different_keys() -> None:
    backend = DatabaseBackend()
    lower = PingTask({}).start(backend=backend, key="ping-a")
    upper = PingTask({}).start(backend=backend, key="PING-A")
    assert lower.id != upper.id


@pytest.mark.parametrize("variant", ["invoice-42 ", "invoice-42  ", "invoice-42\t", " invoice-42"])
def test_keys_differing_only_in_surrounding_spaces_are_different_keys(variant: str) -> None:
    """MariaDB/MySQL's PAD SPACE collations compare ``"k"`` and ``"k "`` equal: the keys'
    column compares without padding (migration 0010), on every database."""
    backend = DatabaseBackend()
    first = PingTask({}).start(backend=backend, key="invoice-42")
    other = PingTask({}).start(backend=backend, key=variant)
    assert other.id != first.id
    assert PingTask({}).start(backend=backend, key=variant).id == other.id
    assert PingTask({}).start(backend=backend, key="invoice-42").id == first.id
    [bulk_first, bulk_other] = backend.enqueue_many(
        [
            EnqueueRequest.for_task(PingTask({}), key="invoice-42"),
            EnqueueRequest.for_task(PingTask({}), key=variant),
        ]
    )
    assert (bulk_first.id, bulk_other.id) == (first.id, other.id)
    assert sorted(TaskRun.objects.values_list("key", flat=True)) == sorted(["invoice-42", variant])


def test_a_finished_run_frees_its_key_for_the_same_task() -> None:
    backend = DatabaseBackend()
    first = PingTask({}).start(backend=backend, key="k")
    runs().operations.cancel(TaskRun.objects.filter(pk=first.id), datetime.now(UTC))
    second = PingTask({}).start(backend=backend, key="k")
    assert second.id != first.id
    assert second.status is TaskStatus.READY


@pytest.mark.parametrize(
    ("field", "value"),
    [("queue", "q" * 101), ("key", "k" * 256), ("task_name", "t" * 256)],
)
def test_a_value_longer_than_its_column_is_an_invalid_option_and_writes_nothing(
    field: str, value: str
) -> None:
    request = EnqueueRequest.for_task(AddTask({"a": 1}))
    setattr(request, field, value)
    with pytest.raises(InvalidOptionError, match="at most"):
        DatabaseBackend().enqueue(request)
    with pytest.raises(InvalidOptionError):
        AddTask.start_many([{"a": 1}] * 60, backend=DatabaseBackend(), queue="q" * 101)
    assert TaskRun.objects.count() == 0


def test_an_over_long_queue_from_start_is_an_invalid_option_error() -> None:
    with pytest.raises(InvalidOptionError):
        AddTask({"a": 1}).start(backend=DatabaseBackend(), queue="q" * 150)
    assert TaskRun.objects.count() == 0


def test_stats_count_runs_per_status() -> None:
    backend = DatabaseBackend()
    AddTask.start_many([{"a": i} for i in range(3)], backend=backend)
    PingTask({}).start(backend=backend, delay=timedelta(hours=1))
    runs().queue.claim("w", (), 1, 30, datetime.now(UTC))
    assert runs().operations.stats() == {
        TaskStatus.READY: 2,
        TaskStatus.RUNNING: 1,
        TaskStatus.SCHEDULED: 1,
    }


def test_an_unsupported_database_is_a_clear_error() -> None:
    class Oracle:
        vendor = "oracle"
        alias = "default"

    with pytest.raises(store.UnsupportedDatabaseError, match="not on oracle"):
        store.for_connection(Oracle())


def test_a_fresh_budget_retry_of_an_unregistered_task_keeps_the_runs_own_budget() -> None:
    run = TaskRun.objects.create(
        task_name="gone.task", status="discarded", attempt=3, max_attempts=3
    )
    retried, blocked, skipped = store.using().operations.retry(
        TaskRun.objects.filter(pk=run.pk), datetime.now(UTC), fresh_budget=True
    )
    assert (retried, blocked, skipped) == (1, [], 0)
    run.refresh_from_db()
    assert (run.status, run.attempt, run.max_attempts) == ("ready", 0, 3)
