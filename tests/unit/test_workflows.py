"""Workflows on the database: chains and groups advance in the outcomes' transaction."""

from __future__ import annotations

import threading
from functools import partial

import pytest
from django.db import connection, transaction

import django_generic_tasks as tasks
from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.models import TaskRun, TaskWorkflow, WorkflowMember
from django_generic_tasks.worker import Worker, WorkerOptions
from tests.unit import workflow_tasks as wt

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backend() -> DatabaseBackend:
    wt.seen.clear()
    return DatabaseBackend()


def drain(**options: object) -> int:
    """Run an in-process worker on this thread until nothing is due (stopped after 30 s)."""
    defaults: dict[str, object] = {"once": True, "interval": 0.02, "concurrency": 2}
    defaults.update(options)
    worker = Worker(WorkerOptions(**defaults))  # type: ignore[arg-type]
    watchdog = threading.Timer(30, worker.stop)
    watchdog.start()
    try:
        return worker.run(install_signals=False)
    finally:
        watchdog.cancel()


def test_a_chain_builds_each_step_from_the_previous_result(backend: DatabaseBackend) -> None:
    handle = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double, wt.AddOne).start(backend=backend)
    assert TaskRun.objects.count() == 1  # only the first step exists before it ran
    drain()
    assert handle.wait(timeout=5) == 5  # (1 + 1) * 2 + 1
    assert handle.status == "succeeded"
    names = [TaskRun.objects.get(pk=r).task_name for r in handle.run_ids]
    assert names == ["tests.wf.add_one", "tests.wf.double", "tests.wf.add_one"]


def test_a_failed_step_stops_the_chain_and_the_handle_says_which_and_why(
    backend: DatabaseBackend,
) -> None:
    handle = tasks.chain(wt.AddOne(wt.Number(n=0)), wt.FailIfOdd, wt.Double).start(backend=backend)
    drain()
    with pytest.raises(tasks.WorkflowFailedError) as caught:
        handle.wait(timeout=5)
    assert handle.failed_step == 1
    assert handle.error is not None
    assert handle.error.type == "builtins.ValueError"
    assert "1 is odd" in str(caught.value.error.message)
    assert caught.value.position == 1
    assert caught.value.task_name == "tests.wf.fail_if_odd"
    assert TaskRun.objects.count() == 2  # the third step never started


def _limits(run_id: str) -> tuple[object, ...]:
    return tuple(
        TaskRun.objects.filter(pk=run_id)
        .values_list("concurrency_key", "concurrency_limit", "rate_interval")
        .get()
    )


def test_a_chain_step_and_a_callback_of_limited_tasks_carry_their_limits(
    backend: DatabaseBackend,
) -> None:
    chain = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.LimitedDouble, wt.AddOne)
    chained = chain.start(backend=backend)
    grouped = tasks.group([wt.AddOne(wt.Number(n=n)) for n in (1, 2)]).then(wt.LimitedTotal)
    fanned = grouped.start(backend=backend)
    drain()
    assert chained.wait(timeout=5) == 5
    assert fanned.wait(timeout=5) == 5
    # Written with the run, as start() writes them: the claim admits them through the limits.
    assert _limits(chained.run_ids[1]) == ("tests.wf.limited_double", 2, 0.01)
    assert _limits(chained.run_ids[2]) == (None, None, None)
    assert fanned.callback_run_id is not None
    assert _limits(fanned.callback_run_id) == ("tests.wf.limited_total", 1, None)


def test_a_chain_whose_steps_do_not_fit_is_refused_when_built() -> None:
    with pytest.raises(tasks.TaskDefinitionError, match="cannot take the previous step"):
        tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Shout)
    with pytest.raises(tasks.TaskDefinitionError, match="must be a task class"):
        tasks.chain(wt.AddOne(wt.Number(n=1)), wt.AddOne(wt.Number(n=2)))  # type: ignore[call-overload]
    assert TaskRun.objects.count() == 0


def test_a_group_calls_its_callback_once_with_results_in_member_order(
    backend: DatabaseBackend,
) -> None:
    handle = (
        tasks.group([wt.AddOne(wt.Number(n=n)) for n in (5, 1, 3, 2)])
        .then(wt.Total)
        .start(backend=backend)
    )
    drain(concurrency=4)
    assert handle.wait(timeout=5) == 6 + 2 + 4 + 3
    assert wt.seen == ["total [6, 2, 4, 3]"]
    assert TaskRun.objects.filter(task_name="tests.wf.total").count() == 1


def test_a_group_without_callback_returns_the_members_results(backend: DatabaseBackend) -> None:
    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(3)]).start(backend=backend)
    drain()
    assert handle.wait(timeout=5) == [1, 2, 3]


def test_a_failed_member_fails_the_group_without_its_callback(backend: DatabaseBackend) -> None:
    members = [wt.FailIfOdd(wt.Wrapped(value=v)) for v in (2, 3, 4)]
    handle = tasks.group(members).then(wt.Total).start(backend=backend)
    drain()
    with pytest.raises(tasks.WorkflowFailedError):
        handle.wait(timeout=5)
    assert handle.failed_step == 1
    assert wt.seen == []
    assert handle.callback_run_id is None


def test_on_failure_none_passes_none_for_failed_members(backend: DatabaseBackend) -> None:
    members = [wt.FailIfOdd(wt.Wrapped(value=v)) for v in (2, 3, 4)]
    handle = tasks.group(members).then(wt.Collect, on_failure="none").start(backend=backend)
    drain()
    assert handle.wait(timeout=5) == [2, None, 4]


def test_a_callback_that_cannot_take_the_results_is_refused_when_built() -> None:
    with pytest.raises(tasks.TaskDefinitionError, match=r"list\[int\]"):
        tasks.group([wt.AddOne(wt.Number(n=1))]).then(wt.Shout)
    with pytest.raises(tasks.TaskDefinitionError, match=r"list\[int \| None\]"):
        tasks.group([wt.AddOne(wt.Number(n=1))]).then(wt.Total, on_failure="none")
    with pytest.raises(tasks.InvalidOptionError):
        tasks.group([])


def test_a_workflow_started_in_a_rolled_back_transaction_leaves_nothing(
    backend: DatabaseBackend,
) -> None:
    def start_then_fail() -> None:
        with transaction.atomic():
            tasks.group([wt.AddOne(wt.Number(n=1))]).then(wt.Total).start(backend=backend)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        start_then_fail()
    assert (TaskRun.objects.count(), TaskWorkflow.objects.count()) == (0, 0)
    assert WorkflowMember.objects.count() == 0


def test_a_member_counted_once_even_if_its_end_is_seen_twice(backend: DatabaseBackend) -> None:
    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(2)]).then(wt.Total)
    started = handle.start(backend=backend)
    drain()
    queue = store.for_connection(connection).queue
    ids = [TaskRun.objects.get(pk=r).pk for r in started.run_ids]
    with queue.write_transaction() as cursor:  # the same ends, reported again
        queue.runs_ended(cursor, [store.schema.db_id(connection, str(i)) for i in ids])
    workflow = TaskWorkflow.objects.get(pk=started.id)
    assert (workflow.done, workflow.status) == (2, "succeeded")
    assert TaskRun.objects.filter(task_name="tests.wf.total").count() == 1


def test_a_member_whose_worker_was_lost_is_counted_by_the_reaper(backend: DatabaseBackend) -> None:
    from datetime import UTC, datetime, timedelta

    from django_generic_tasks.execution.attempts import lost_worker_decision

    handle = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=backend)
    queue = store.for_connection(connection).queue
    now = datetime.now(UTC)
    assert len(queue.claim("gone", [], 10, 0.01, now)) == 1
    queue.reclaim_expired(partial(lost_worker_decision, lost_limit=0), now + timedelta(seconds=5))
    assert handle.refresh().status == "failed"
    assert handle.failed_step == 0
    assert handle.error is not None
    assert handle.error.type.endswith("WorkerLost")


def test_members_ending_at_once_on_two_workers_start_the_callback_once(
    backend: DatabaseBackend,
) -> None:
    from django.db import connections

    count = 40
    handle = (
        tasks.group([wt.Nap(wt.Pause(n=n)) for n in range(count)])
        .then(wt.Total)
        .start(backend=backend)
    )

    def work() -> None:
        try:
            drain(concurrency=4)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    drain()  # the callback, if the workers stopped before it was due
    assert handle.wait(timeout=10) == sum(range(count))
    assert wt.seen == [f"total {list(range(count))}"]
    workflow = TaskWorkflow.objects.get(pk=handle.id)
    assert (workflow.done, workflow.failed) == (count, 0)
    assert WorkflowMember.objects.filter(workflow_id=handle.id, done=False).count() == 0


def test_cancelling_a_waiting_step_stops_its_chain(backend: DatabaseBackend) -> None:
    handle = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=backend)
    tasks.get_handle(handle.run_ids[0], backend=backend).cancel()
    assert handle.refresh().status == "failed"
    assert handle.failed_step == 0


def test_cancelling_a_waiting_member_counts_it(backend: DatabaseBackend) -> None:
    members = [wt.AddOne(wt.Number(n=n)) for n in range(2)]
    handle = tasks.group(members).then(wt.Collect, on_failure="none").start(backend=backend)
    tasks.get_handle(handle.run_ids[1], backend=backend).cancel()
    drain()
    assert handle.wait(timeout=5) == [1, None]


def test_get_runs_names_the_workflow_of_a_member(backend: DatabaseBackend) -> None:
    from django.test import Client

    from django_generic_tasks.conf import override_backend

    with override_backend(backend):
        handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(2)]).start()
        alone = wt.AddOne(wt.Number(n=5)).start()
        client = Client()
        member = client.get(f"/api/tasks/runs/{handle.run_ids[1]}").json()
        assert member["workflow"] == {
            "id": handle.id,
            "kind": "group",
            "position": 1,
            "role": "member",
        }
        assert client.get(f"/api/tasks/runs/{alone.id}").json()["workflow"] is None


def test_the_admin_lists_a_workflow_and_its_runs(backend: DatabaseBackend, admin_client) -> None:  # type: ignore[no-untyped-def]
    handle = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=backend)
    drain()
    listing = admin_client.get("/admin/django_generic_tasks/taskworkflow/")
    assert listing.status_code == 200
    assert handle.id in listing.content.decode()
    page = admin_client.get(f"/admin/django_generic_tasks/taskworkflow/{handle.id}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "tests.wf.add_one" in text
    assert "tests.wf.double" in text
    assert f"/admin/django_generic_tasks/taskrun/{handle.run_ids[1]}/change/" in text


def test_a_runs_admin_page_links_to_its_workflow(backend: DatabaseBackend, admin_client) -> None:  # type: ignore[no-untyped-def]
    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(2)]).then(wt.Total)
    started = handle.start(backend=backend)
    alone = wt.AddOne(wt.Number(n=5)).start(backend=backend)
    page = admin_client.get(f"/admin/django_generic_tasks/taskrun/{started.run_ids[1]}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert f'href="/admin/django_generic_tasks/taskworkflow/{started.id}/change/"' in text
    assert "(member 1)" in text
    other = admin_client.get(f"/admin/django_generic_tasks/taskrun/{alone.id}/change/")
    assert "/admin/django_generic_tasks/taskworkflow/" + started.id not in other.content.decode()
    assert "(member " not in other.content.decode()


def test_the_dashboard_counts_running_succeeded_and_failed_workflows(
    backend: DatabaseBackend,
    admin_client,  # type: ignore[no-untyped-def]
) -> None:
    import re

    tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=backend)
    tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(2)]).start(backend=backend)
    drain()
    tasks.group([wt.FailIfOdd(wt.Wrapped(value=1))]).start(backend=backend)
    drain()
    tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=backend)  # not run
    page = admin_client.get("/admin/django_generic_tasks/dashboard/").content.decode()
    found = {
        status: int(re.search(rf'id="dgt-workflows-{status}">\s*(\d+)\s*<', page)[1])  # type: ignore[index]
        for status in ("running", "succeeded", "failed")
    }
    assert found == {"running": 1, "succeeded": 2, "failed": 1}


def test_prune_deletes_ended_workflows_with_their_runs(backend: DatabaseBackend) -> None:
    from datetime import UTC, datetime, timedelta

    tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=backend)
    tasks.group([wt.AddOne(wt.Number(n=1))]).then(wt.Total).start(backend=backend)
    drain()
    assert TaskWorkflow.objects.filter(status="succeeded").count() == 2
    store.for_connection(connection).operations.prune(datetime.now(UTC) + timedelta(seconds=1))
    assert TaskWorkflow.objects.count() == WorkflowMember.objects.count() == 0
    assert TaskRun.objects.count() == 0


def test_a_cancelled_step_given_back_by_its_worker_stops_its_chain(
    backend: DatabaseBackend,
) -> None:
    from datetime import UTC, datetime

    handle = tasks.chain(wt.AddOne(wt.Number(n=1)), wt.Double).start(backend=backend)
    queue = store.for_connection(connection).queue
    (claimed,) = queue.claim("w", [], 1, 30, datetime.now(UTC))
    tasks.get_handle(handle.run_ids[0], backend=backend).cancel()  # asked to stop: running
    assert queue.release("w", [claimed]) == 1  # never started: given back, ends cancelled
    assert handle.refresh().status == "failed"
    assert handle.failed_step == 0


@pytest.mark.parametrize("with_rollups", [True, False])
def test_a_finish_with_or_without_rollups_counts_members_and_starts_the_callback(
    backend: DatabaseBackend, with_rollups: bool
) -> None:
    from datetime import UTC, datetime

    from django_generic_tasks.core.status import TaskStatus
    from django_generic_tasks.execution import Outcome

    handle = tasks.group([wt.AddOne(wt.Number(n=n)) for n in range(2)]).then(wt.Total)
    started = handle.start(backend=backend)
    queue = store.for_connection(connection).queue
    claimed = queue.claim("w", [], 2, 30, datetime.now(UTC))
    now = datetime.now(UTC)
    items = [
        store.Finished(
            run,
            Outcome(run.id, run.task_name, run.attempt, 1, TaskStatus.SUCCEEDED, 10 + n),
            now,
            0.01,
        )
        for n, run in enumerate(sorted(claimed, key=lambda r: started.run_ids.index(r.id)))
    ]
    queue.finish("w", items, None if with_rollups else [])
    assert TaskWorkflow.objects.get(pk=started.id).done == 2
    (callback,) = TaskRun.objects.filter(task_name="tests.wf.total")
    assert callback.params == {"values": [10, 11]}
    if with_rollups:
        from django_generic_tasks.models import RunRollup

        assert RunRollup.objects.filter(task_name="tests.wf.add_one").exists()
