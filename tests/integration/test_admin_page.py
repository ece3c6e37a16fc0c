"""The TaskRun admin in headless Chromium against a live server: log in, filter, retry."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from django_generic_tasks.core.status import TaskStatus
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


def _seed_history(now: datetime) -> None:
    """A week of rollups, an hour of queue samples and a worker, as workers would leave them."""
    import random

    from django_generic_tasks import store
    from django_generic_tasks.models import QueueSample, RunRollup
    from django_generic_tasks.store.rollups import epoch_minute

    rng = random.Random(7)
    last = epoch_minute(now)
    rows = []
    for minute in range(last - 7 * 24 * 60, last, 7):
        for task in ("shop.charge_card", "shop.send_receipt"):
            for outcome, share in (("succeeded", 40), ("failed", 2), ("retried", 4)):
                runs = rng.randint(0, share)
                if runs:
                    rows.append(
                        RunRollup(
                            minute=minute,
                            task_name=task,
                            queue="default",
                            outcome=outcome,
                            runs=runs,
                            seconds=runs * 0.04,
                            d3=runs,
                        )
                    )
    RunRollup.objects.bulk_create(rows)
    QueueSample.objects.bulk_create(
        QueueSample(minute=m, queue=q, waiting=rng.randint(0, 30), lag=rng.random() * 5)
        for m in range(last - 59, last + 1)
        for q in ("default", "mail")
    )
    store.using().workers.beat(
        store.WorkerInfo("web-1:4242:9f3c", "web-1", 4242, ("default", "mail"), 4, 1234, now),
        3600,
        now,
    )


def test_dashboard_renders_labelled_charts_and_refreshes_a_number_in_place(
    browser: Any, live_server: Any, admin_user: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.unit.test_dashboard import finish_runs

    _seed_history(datetime.now(UTC))
    finish_runs([TaskStatus.SUCCEEDED, TaskStatus.FAILED])
    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "Site administration" in b.page_source)
    browser.find_element(
        By.CSS_SELECTOR, "a[href='/admin/django_generic_tasks/dashboard/']"
    ).click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "dgt-dashboard"))

    charts = browser.find_elements(By.CSS_SELECTOR, "svg.dgt-chart[role=img]")
    assert len(charts) == 5  # throughput: hour, day, week; queues: depth and lag
    for chart in charts:
        title = chart.find_element(By.TAG_NAME, "title")
        assert chart.get_attribute("aria-labelledby") == title.get_attribute("id")
        assert title.get_attribute("textContent")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.dgt-chart rect")  # bars drawn
    assert "web-1:4242:9f3c" in browser.find_element(By.ID, "dgt-workers").text
    before = _finished_this_hour(browser)
    assert before is not None
    browser.set_window_size(1400, 2900)  # the whole page in the screenshot
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    browser.execute_script("window.dgtSamePage = true;")  # a reload would forget it
    finish_runs([TaskStatus.SUCCEEDED] * 3)
    WebDriverWait(browser, 20).until(lambda b: _finished_this_hour(b) == before + 3)
    assert browser.execute_script("return window.dgtSamePage === true;")


def _finished_this_hour(browser: Any) -> int | None:
    """The dashboard's "finished this hour" counter, read in one script call.

    The page swaps its panels when it refreshes, so an element found first and read
    after can be a replaced (stale) one: the lookup and the read happen together.
    """
    text = browser.execute_script(
        "const e = document.getElementById('dgt-finished-hour'); return e ? e.textContent : null;"
    )
    return int(text) if text is not None and text.strip().isdigit() else None
