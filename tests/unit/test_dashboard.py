"""The admin dashboard through the test client: what it shows, and who may see it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client

from django_generic_tasks import store
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.core.status import ErrorInfo, TaskStatus
from django_generic_tasks.execution import Outcome
from tests.testapp.tasks import AddTask

pytestmark = pytest.mark.django_db

URL = "/admin/django_generic_tasks/dashboard/"


def finish_runs(
    outcomes: list[TaskStatus], queue: str = "default", seconds: float = 0.02
) -> list[str]:
    """Start, claim and finish one run per outcome through the store, as a worker does."""
    for a in range(len(outcomes)):
        AddTask({"a": a}).start(backend=DatabaseBackend(), queue=queue)
    runs = store.for_connection(connection)
    claimed = runs.queue.claim("test-worker", (queue,), len(outcomes), 30, datetime.now(UTC))
    now = datetime.now(UTC)
    items = []
    for run, status in zip(claimed, outcomes, strict=True):
        error = None if status is TaskStatus.SUCCEEDED else ErrorInfo("tests.Boom", "boom", "")
        outcome = Outcome(run.id, run.task_name, run.attempt, run.max_attempts, status, None, error)
        items.append(store.Finished(run, outcome, now, seconds))
    runs.queue.finish("test-worker", items)
    return [run.id for run in claimed]


def test_dashboard_is_linked_from_the_admin_index(admin_client: Client) -> None:
    assert URL in admin_client.get("/admin/").content.decode()


def test_the_dashboard_has_no_object_pages(admin_client: Client) -> None:
    for page in ("1/change/", "add/", "1/delete/", "1/history/"):
        assert admin_client.get(URL + page).status_code in (302, 404)


def test_dashboard_shows_throughput_queues_tasks_and_workers(admin_client: Client) -> None:
    ids = finish_runs([TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED, TaskStatus.FAILED])
    AddTask({"a": 9}).start(backend=DatabaseBackend(), queue="mail")
    now = datetime.now(UTC)
    store.using().workers.beat(
        store.WorkerInfo("web-1:42:abcd", "web-1", 42, ("mail",), 8, 17, now), 30, now
    )
    page = admin_client.get(URL).content.decode()
    assert re.search(r'id="dgt-finished-hour">\s*3\s*<', page)
    # Three throughput charts, each an SVG image with a title and a table alternative.
    for chart in ("hour", "day", "week"):
        assert f'<svg class="dgt-chart" id="dgt-throughput-{chart}" role="img"' in page
        assert f'aria-labelledby="dgt-throughput-{chart}-title"' in page
    assert page.count("<table class='dgt-alt'>") >= 3
    assert "Finished attempts: Last hour, per minute" in page
    assert "<th scope='col'>succeeded</th><th scope='col'>failed</th>" in page
    # Queues now, per task (with a link to the last failure), live workers.
    assert re.search(r"<th scope=\"row\">mail</th><td>1</td>", page)
    tasks = page[page.index('id="dgt-tasks"') :]
    assert '<th scope="row">tests.add</th><td>3</td><td>1</td><td>33.3%</td>' in tasks
    assert f"/admin/django_generic_tasks/taskrun/{ids[2]}/change/" in tasks
    assert "web-1:42:abcd" in page
    assert "<td>8</td><td>17</td>" in page


def test_the_refreshed_part_comes_alone_and_shows_new_runs(admin_client: Client) -> None:
    finish_runs([TaskStatus.SUCCEEDED])
    first = admin_client.get(URL, {"partial": "1"}).content.decode()
    assert "<html" not in first
    assert re.search(r'id="dgt-finished-hour">\s*1\s*<', first)
    finish_runs([TaskStatus.SUCCEEDED, TaskStatus.DISCARDED])
    again = admin_client.get(URL, {"partial": "1"}).content.decode()
    assert re.search(r'id="dgt-finished-hour">\s*3\s*<', again)


def test_task_names_and_errors_are_escaped_in_charts_and_tables(admin_client: Client) -> None:
    from django_generic_tasks.models import RunRollup
    from django_generic_tasks.store.rollups import epoch_minute

    RunRollup.objects.create(
        minute=epoch_minute(datetime.now(UTC)),
        task_name="<script>x</script>",
        queue="q",
        outcome="failed",
        runs=1,
    )
    page = admin_client.get(URL).content.decode()
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


def test_non_staff_users_are_sent_to_the_login_page(client: Client) -> None:
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("someone", password="x"))
    response = client.get(URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_view_permission_on_runs_are_refused(client: Client) -> None:
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"partial": "1"}).status_code == 403
    assert URL not in client.get("/admin/").content.decode()


def test_staff_with_view_permission_on_runs_see_the_dashboard(client: Client) -> None:
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_taskrun"))
    client.force_login(user)
    assert client.get(URL).status_code == 200
    assert URL in client.get("/admin/").content.decode()
