"""The TaskRun admin through the test client: filters, search, detail page, actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from django_generic_tasks.models import TaskRun

pytestmark = pytest.mark.django_db

URL = "/admin/django_generic_tasks/taskrun/"


def make(**fields: Any) -> TaskRun:
    fields.setdefault("task_name", "tests.add")
    fields.setdefault("params", {"a": 1})
    return TaskRun.objects.create(**fields)


def act(client: Client, action: str, *runs: TaskRun) -> str:
    response = client.post(
        URL,
        {"action": action, "_selected_action": [str(r.pk) for r in runs]},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_changelist_filters_by_status_and_task(admin_client: Client) -> None:
    failed = make(status="failed", task_name="tests.flaky")
    done = make(status="succeeded")
    page = admin_client.get(URL, {"status": "failed"}).content.decode()
    assert str(failed.pk) in page
    assert str(done.pk) not in page
    page = admin_client.get(URL, {"task_name": "tests.flaky"}).content.decode()
    assert str(failed.pk) in page
    assert str(done.pk) not in page


def test_search_finds_a_run_by_id_or_key_prefix(admin_client: Client) -> None:
    keyed = make(key="invoice-42")
    other = make(key="report-1")
    page = admin_client.get(URL, {"q": str(keyed.pk)}).content.decode()
    assert str(keyed.pk) in page
    assert str(other.pk) not in page
    page = admin_client.get(URL, {"q": "invoice"}).content.decode()
    assert str(keyed.pk) in page
    assert str(other.pk) not in page


def test_detail_page_shows_params_result_and_traceback_readably(admin_client: Client) -> None:
    run = make(
        status="failed",
        params={"to": "<script>x</script>"},
        error_type="builtins.ValueError",
        error_message="bad",
        error_traceback="Traceback (most recent call last):\n  ValueError: bad",
    )
    page = admin_client.get(f"{URL}{run.pk}/change/").content.decode()
    assert "Traceback (most recent call last)" in page
    assert "&lt;script&gt;" in page  # escaped, not executed
    assert "<script>x</script>" not in page
    assert "builtins.ValueError" in page


def test_add_is_not_offered(admin_client: Client) -> None:
    assert admin_client.get(f"{URL}add/").status_code == 403


def test_retry_makes_failed_runs_ready_again_as_one_more_attempt(admin_client: Client) -> None:
    failed = make(status="failed", attempt=3, max_attempts=3, finished_at=datetime.now(UTC))
    done = make(status="succeeded")
    page = act(admin_client, "retry_runs", failed, done)
    assert "Retried 1 runs." in page
    assert "Skipped 1 runs" in page
    failed.refresh_from_db()
    assert (failed.status, failed.finished_at, failed.max_attempts) == ("ready", None, 4)
    done.refresh_from_db()
    assert done.status == "succeeded"


def test_retry_gives_exactly_one_more_attempt_and_says_so(admin_client: Client) -> None:
    failed = make(status="failed", attempt=8, max_attempts=8, finished_at=datetime.now(UTC))
    assert "exactly one more attempt" in admin_client.get(URL).content.decode()
    act(admin_client, "retry_runs", failed)
    failed.refresh_from_db()
    assert (failed.status, failed.attempt, failed.max_attempts) == ("ready", 8, 9)


def test_retry_with_a_fresh_budget_restarts_the_attempts_at_the_tasks_max_attempts(
    admin_client: Client,
) -> None:
    # tests.flaky has max_attempts = 4; this run was already retried once (4 -> 5).
    failed = make(
        task_name="tests.flaky",
        status="failed",
        attempt=5,
        max_attempts=5,
        finished_at=datetime.now(UTC),
    )
    assert (
        "Retry selected runs with a fresh attempt budget" in admin_client.get(URL).content.decode()
    )
    page = act(admin_client, "retry_runs_fresh_budget", failed)
    assert "Retried 1 runs with a fresh attempt budget." in page
    failed.refresh_from_db()
    assert (failed.status, failed.attempt, failed.max_attempts, failed.finished_at) == (
        "ready",
        0,
        4,
        None,
    )


def test_retry_with_a_fresh_budget_skips_runs_that_are_not_retryable(admin_client: Client) -> None:
    done = make(status="succeeded", attempt=1, max_attempts=1)
    assert "Skipped 1 runs" in act(admin_client, "retry_runs_fresh_budget", done)
    done.refresh_from_db()
    assert (done.status, done.attempt) == ("succeeded", 1)


def test_run_page_has_no_save_buttons_and_refuses_a_post(admin_client: Client) -> None:
    run = make(status="failed", error_message="boom")
    response = admin_client.get(f"{URL}{run.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200
    for button in ('name="_save"', 'name="_continue"', 'name="_addanother"'):
        assert button not in page
    assert "Close" in page
    assert "deletelink" in page  # a superuser may still delete the run
    posted = admin_client.post(f"{URL}{run.pk}/change/", {"error_message": "edited"})
    assert posted.status_code == 403
    run.refresh_from_db()
    assert run.error_message == "boom"


def test_run_page_offers_no_delete_without_the_delete_permission(
    view_only_client: Client,
) -> None:
    run = make(status="failed")
    page = view_only_client.get(f"{URL}{run.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert "deletelink" not in page
    assert str(run.pk) in page


def test_retry_refuses_a_run_whose_key_is_taken_by_an_unfinished_run(
    admin_client: Client,
) -> None:
    failed = make(status="failed", key="only-one")
    make(status="ready", key="only-one")
    page = act(admin_client, "retry_runs", failed)
    assert "another unfinished run of the task holds the same key: only-one" in page
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_cancel_stops_waiting_runs_only(admin_client: Client) -> None:
    ready = make(status="ready")
    done = make(status="succeeded")
    assert "Cancelled 1 runs." in act(admin_client, "cancel_runs", ready, done)
    ready.refresh_from_db()
    assert ready.status == "cancelled"


def test_run_now_makes_scheduled_runs_due(admin_client: Client) -> None:
    later = make(status="scheduled", run_after=datetime.now(UTC) + timedelta(days=1))
    assert "1 runs are due now." in act(admin_client, "run_now", later)
    later.refresh_from_db()
    assert later.status == "ready"
    assert later.run_after <= datetime.now(UTC)


@pytest.fixture
def view_only_client(client: Client) -> Client:
    """Logged in as a staff user who may only view task runs."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_taskrun"))
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "action", ["retry_runs", "retry_runs_fresh_budget", "cancel_runs", "run_now"]
)
def test_view_only_staff_user_cannot_run_an_admin_action(
    view_only_client: Client, action: str
) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    failed = make(status="failed", finished_at=datetime.now(UTC))
    scheduled = make(status="scheduled", run_after=later)
    before = {r.pk: (r.status, r.run_after) for r in TaskRun.objects.all()}
    page = view_only_client.get(URL).content.decode()
    assert str(failed.pk) in page  # the user can see the runs...
    assert action not in page  # ...but is not offered the action
    response = view_only_client.post(
        URL, {"action": action, "_selected_action": [str(failed.pk), str(scheduled.pk)]}
    )
    assert response.status_code in (200, 302)
    assert {r.pk: (r.status, r.run_after) for r in TaskRun.objects.all()} == before
