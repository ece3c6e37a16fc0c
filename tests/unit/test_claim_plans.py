"""A claim takes at most ``limit`` runs whatever plan PostgreSQL picks for it: with the
statistics of a nearly empty queue (the usual state of a drained one after ``ANALYZE``), a
``LIMIT … FOR UPDATE SKIP LOCKED`` subquery on the inner side of a nested loop is scanned again
per outer row, each time skipping the rows the previous scan locked, and an
``UPDATE … WHERE id IN (subquery)`` claimed every due run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.models import TaskRun
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def drained_queue_statistics() -> None:
    """The planner's view of a drained queue: one row, analyzed, gone."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner (other databases claim in a transaction by ids)")
    AddTask.start_many([{"a": 0}], backend=DatabaseBackend())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_generic_tasks_taskrun")
    TaskRun.objects.all().delete()


@pytest.mark.usefixtures("drained_queue_statistics")
def test_a_claim_on_a_freshly_analyzed_queue_takes_no_more_than_its_limit() -> None:
    AddTask.start_many([{"a": i} for i in range(7)], backend=DatabaseBackend())
    claimed = store.for_connection(connection).queue.claim("w", (), 3, 30, datetime.now(UTC))
    assert len(claimed) == 3
    assert TaskRun.objects.filter(status="running").count() == 3


@pytest.mark.usefixtures("drained_queue_statistics")
def test_a_claim_through_the_limits_on_a_freshly_analyzed_queue_takes_no_more_than_asked() -> None:
    from tests.contract.flow_tasks import ContractLimited  # noqa: F401  (registers a limit)

    AddTask.start_many([{"a": i} for i in range(7)], backend=DatabaseBackend())
    queue = store.for_connection(connection).queue
    claimed = queue.claim("w", (), 3, 30, datetime.now(UTC), limited=True)
    assert len(claimed) == 3
    assert TaskRun.objects.filter(status="running").count() == 3
