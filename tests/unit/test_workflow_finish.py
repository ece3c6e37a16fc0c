"""How a batch of outcomes advances its workflows: members counted in the finish itself, the
callback started exactly once, a callback's params read in one statement."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.execution import Outcome
from django_generic_tasks.models import RunRollup, TaskRun, TaskWorkflow, WorkflowMember
from tests.unit import workflow_tasks as wt

pytestmark = pytest.mark.django_db(transaction=True)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's finish statements"
)


@pytest.fixture
def backend() -> Iterator[DatabaseBackend]:
    from django_generic_tasks.store import postgresql

    wt.seen.clear()
    postgresql._FOLLOW_UPS_SEEN.clear()  # each test starts without the hints
    postgresql._MEMBERS_SEEN.clear()
    yield DatabaseBackend()
    postgresql._FOLLOW_UPS_SEEN.clear()


def succeeded(run: store.ClaimedRun, result: int) -> store.Finished:
    """``run``'s successful outcome with ``result``, as a worker reports it."""
    outcome = Outcome(run.id, run.task_name, run.attempt, 1, TaskStatus.SUCCEEDED, result)
    return store.Finished(run, outcome, datetime.now(UTC), 0.001)


def claim_in_order(
    worker: str, run_ids: tuple[str, ...], limit: int = 100
) -> list[store.ClaimedRun]:
    """Claim up to ``limit`` due runs for ``worker``, in the order of ``run_ids`` (and probe
    the tables once, so the statements a test counts are the finish's own)."""
    queue = store.for_connection(connection).queue
    queue.history_ready(), queue.workflows.exists(), queue.observations.rollups_ready()
    claimed = queue.claim(worker, [], limit, 30, datetime.now(UTC))
    return sorted(claimed, key=lambda run: run_ids.index(run.id))


@postgresql_only
@pytest.mark.parametrize("with_rollups", [False, True])
def test_members_that_leave_their_group_running_are_counted_by_the_finish_statement_alone(
    backend: DatabaseBackend, with_rollups: bool
) -> None:
    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(4)]).then(wt.Total)
    started = handle.start(backend=backend)
    runs = claim_in_order("w", started.run_ids)
    queue = store.for_connection(connection).queue
    queue.finish("w", [succeeded(runs[0], 10)], [])  # members are around from now on
    with CaptureQueriesContext(connection) as queries:
        items = [succeeded(run, 10 + n) for n, run in enumerate(runs[1:3], 1)]
        queue.finish("w", items, None if with_rollups else [])
    assert len(queries) == 1  # one autocommitted statement: outcomes and count together
    assert RunRollup.objects.filter(runs=2).exists() is with_rollups
    workflow = TaskWorkflow.objects.get(pk=started.id)
    assert (workflow.done, workflow.failed, workflow.status) == (3, 0, "running")
    assert WorkflowMember.objects.filter(workflow_id=started.id, done=True).count() == 3
    assert not TaskRun.objects.filter(task_name="tests.wf.total").exists()
    queue.finish("w", [succeeded(runs[3], 13)], None if with_rollups else [])
    (callback,) = TaskRun.objects.filter(task_name="tests.wf.total")
    assert callback.params == {"values": [10, 11, 12, 13]}
    assert TaskWorkflow.objects.get(pk=started.id).done == 4


@postgresql_only
@pytest.mark.parametrize("with_rollups", [False, True])
def test_a_batch_without_members_is_written_by_one_statement(
    backend: DatabaseBackend, with_rollups: bool
) -> None:
    handle = wt.AddOne(wt.Number(n=1)).start(backend=backend)
    (run,) = claim_in_order("w", (handle.id,))
    queue = store.for_connection(connection).queue
    with CaptureQueriesContext(connection) as queries:
        queue.finish("w", [succeeded(run, 2)], None if with_rollups else [])
    assert len(queries) == 1
    assert TaskRun.objects.get(pk=handle.id).result == 2
    assert RunRollup.objects.exists() is with_rollups


@postgresql_only
def test_a_failed_member_counted_by_the_finish_statement_is_counted_failed(
    backend: DatabaseBackend,
) -> None:
    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(2)]).then(wt.Total)
    started = handle.start(backend=backend)
    first, second = claim_in_order("w", started.run_ids)
    failed = Outcome(first.id, first.task_name, first.attempt, 1, TaskStatus.FAILED)
    queue = store.for_connection(connection).queue
    queue.finish("w", [store.Finished(first, failed, datetime.now(UTC), 0.001)], [])
    assert TaskWorkflow.objects.values_list("done", "failed").get(pk=started.id) == (1, 1)
    queue.finish("w", [succeeded(second, 2)], [])
    assert started.refresh().status == "failed"
    assert started.failed_step == 0
    assert not TaskRun.objects.filter(task_name="tests.wf.total").exists()


@postgresql_only
def test_last_members_finishing_at_once_on_two_connections_start_the_callback_once(
    backend: DatabaseBackend,
) -> None:
    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(2)]).then(wt.Total)
    started = handle.start(backend=backend)
    runs = [claim_in_order(f"w{n}", started.run_ids, 1)[0] for n in range(2)]  # one each
    held, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_the_workflow() -> None:  # both finishes queue behind this lock, then race
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT id FROM django_generic_tasks_taskworkflow WHERE id = %s FOR UPDATE",
                    [started.id],
                )
                held.set()
                release.wait(10)
                cursor.execute("COMMIT")
        finally:
            connections.close_all()

    def finish(n: int) -> None:
        try:
            store.for_connection(connections["default"]).queue.finish(
                f"w{n}", [succeeded(runs[n], 10 + n)], []
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_workflow)
    holder.start()
    assert held.wait(10)
    finishers = [threading.Thread(target=finish, args=(n,)) for n in range(2)]
    for thread in finishers:
        thread.start()
    threading.Event().wait(0.5)  # both statements are waiting for the workflow's row
    release.set()
    for thread in [holder, *finishers]:
        thread.join(30)
    assert errors == []
    (callback,) = TaskRun.objects.filter(task_name="tests.wf.total")
    assert callback.params == {"values": [10, 11]}
    assert TaskWorkflow.objects.values_list("done", "failed").get(pk=started.id) == (2, 0)


@postgresql_only
def test_a_chain_step_and_its_next_step_are_written_in_two_statements(
    backend: DatabaseBackend,
) -> None:
    handle = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double, wt.AddOne).start(backend=backend)
    queue = store.for_connection(connection).queue
    (first,) = claim_in_order("w", handle.run_ids)
    queue.finish("w", [succeeded(first, 2)], [])  # chains are around from now on
    (second,) = claim_in_order("w", handle.refresh().run_ids)
    with CaptureQueriesContext(connection) as queries:
        done = Outcome(
            second.id, second.task_name, second.attempt, 1, TaskStatus.SUCCEEDED, {"n": 4}
        )
        queue.finish("w", [store.Finished(second, done, datetime.now(UTC), 0.0)], [])
    statements = [query["sql"].lstrip().split()[0].upper() for query in queries]
    # outcome + count + result back, then the next run with its member row (no read)
    assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == ["WITH", "WITH"]
    (third,) = TaskRun.objects.filter(task_name="tests.wf.add_one", status="ready")
    assert third.params == {"n": 4}


def test_a_groups_members_are_read_back_in_member_order_by_one_statement(
    backend: DatabaseBackend,
) -> None:
    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(5)]).then(wt.Collect)
    started = handle.start(backend=backend)
    runs = claim_in_order("w", started.run_ids)
    queue = store.for_connection(connection).queue
    failed = Outcome(runs[1].id, runs[1].task_name, runs[1].attempt, 1, TaskStatus.FAILED)
    done = [succeeded(run, 10 * n) for n, run in enumerate(runs) if n != 1]
    queue.finish("w", [*done[:2], store.Finished(runs[1], failed, datetime.now(UTC), 0.0)], [])
    TaskRun.objects.filter(pk=runs[4].id).delete()  # pruned meanwhile
    book = store.for_connection(connection).queue.workflows
    with CaptureQueriesContext(connection) as queries:
        members = book.members(started.id)
    assert len(queries) == 1
    assert [(m.status, m.result) for m in members] == [
        ("succeeded", 0),
        ("failed", None),
        ("succeeded", 20),
        ("running", None),
        ("failed", None),
    ]
    assert members[4].error is not None
    assert members[4].error.type == "Pruned"
