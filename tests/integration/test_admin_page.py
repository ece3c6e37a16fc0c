"""The TaskRun admin in headless Chromium against a live server: log in, filter, retry."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from django_generic_tasks.models import TaskRun
from tests.conftest import need_service

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        need_service("headless Chromium: apt-get install -y chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need_service("selenium is not installed (pip install 'django-generic-tasks[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def test_admin_logs_in_filters_failed_runs_and_retries_one(
    browser: Any, live_server: Any, admin_user: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    failed = TaskRun.objects.create(
        task_name="tests.flaky",
        params={"token": "t-1", "failures": 9},
        status="failed",
        attempt=4,
        max_attempts=4,
        finished_at=datetime.now(UTC),
        error_type="tests.testapp.tasks.Transient",
        error_message="failure 4",
        error_traceback="Traceback (most recent call last):\n  ...\nTransient: failure 4\n",
    )
    done = TaskRun.objects.create(task_name="tests.add", params={"a": 1}, status="succeeded")
    ARTIFACTS.mkdir(exist_ok=True)

    browser.get(f"{live_server.url}/admin/login/?next=/admin/django_generic_tasks/taskrun/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "task run" in b.title.lower())

    browser.find_element(By.XPATH, "//*[@id='changelist-filter']//a[text()='Failed']").click()
    WebDriverWait(browser, 10).until(lambda b: "status__exact=failed" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    assert str(failed.pk) in rows[0].text
    assert str(done.pk) not in browser.page_source

    rows[0].find_element(By.CSS_SELECTOR, "input.action-select").click()
    browser.save_screenshot(str(ARTIFACTS / "admin-taskrun-failed.png"))
    Select(browser.find_element(By.NAME, "action")).select_by_value("retry_runs")
    browser.find_element(By.NAME, "index").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".messagelist"))
    assert "Retried 1 runs." in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    browser.save_screenshot(str(ARTIFACTS / "admin-taskrun-retry.png"))
    failed.refresh_from_db()
    assert failed.status == "ready"

    browser.get(f"{live_server.url}/admin/django_generic_tasks/taskrun/{failed.pk}/change/")
    assert "Transient: failure 4" in browser.find_element(By.TAG_NAME, "body").text
    # Every field is read-only: no Save buttons render, only Close (and Delete for admins).
    assert not browser.find_elements(By.CSS_SELECTOR, ".submit-row input[type=submit]")
    assert browser.find_elements(By.CSS_SELECTOR, ".submit-row a.closelink")
    browser.save_screenshot(str(ARTIFACTS / "admin-taskrun-detail.png"))
