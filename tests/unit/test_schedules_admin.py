"""The admin's Schedules page: next/last fire, last run status, a permission-checked run now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.models import TaskRun
from django_generic_tasks.schedules.registry import settings_entry
from django_generic_tasks.schedules.scheduler import Scheduler

pytestmark = pytest.mark.django_db
URL = "/admin/django_generic_tasks/scheduleslot/"
SCHEDULES = {
    "add-hourly": {
        "task": "tests.add",
        "cron": "0 * * * *",
        "tz": "Europe/Berlin",
        "params": {"a": 4},
    }
}


@pytest.fixture(autouse=True)
def _schedules(settings: object) -> None:
    settings.TASKS_SCHEDULES = SCHEDULES  # type: ignore[attr-defined]
    settings.TASKS_BACKEND = "django_generic_tasks.backends.DatabaseBackend"  # type: ignore[attr-defined]


def test_the_page_lists_each_schedule_with_next_and_last_fire_and_last_status(
    admin_client: Client,
) -> None:
    page = admin_client.get(URL).content.decode()
    assert "add-hourly" in page
    assert "cron &#x27;0 * * * *&#x27;" in page
    assert "Europe/Berlin" in page
    assert "never" in page
    slot = datetime(2026, 6, 1, 12, tzinfo=UTC)
    entry = settings_entry("add-hourly", SCHEDULES["add-hourly"])
    scheduler = Scheduler([entry], DatabaseBackend(), wall=lambda: slot.replace(minute=1))
    scheduler.start()
    scheduler._after[entry.id] = slot.replace(hour=11)
    scheduler._fill(slot.replace(minute=1))
    (fired,) = scheduler.tick()
    page = admin_client.get(URL).content.decode()
    assert "2026-06-01 14:00:00 CEST" in page  # in the schedule's zone
    assert fired.run_id in page
    assert "ready" in page
    assert "Run now" in page


def test_run_now_starts_the_task_with_the_schedule_params(admin_client: Client) -> None:
    response = admin_client.post(f"{URL}run-now/", {"schedule_id": "add-hourly"}, follow=True)
    (run,) = TaskRun.objects.all()
    assert run.params == {"a": 4, "b": 0}
    assert f"run {run.pk}" in response.content.decode()


def test_run_now_refuses_users_without_the_change_permission(client: Client) -> None:
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_scheduleslot"))
    client.force_login(user)
    page = client.get(URL)
    assert page.status_code == 200
    assert "Run now" not in page.content.decode()
    assert client.post(f"{URL}run-now/", {"schedule_id": "add-hourly"}).status_code == 403
    assert not TaskRun.objects.exists()


def test_the_page_refuses_users_without_permission(client: Client) -> None:
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("nobody", password="x", is_staff=True))
    assert client.get(URL).status_code == 403
