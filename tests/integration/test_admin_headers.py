"""The dashboard and Schedules pages in headless Chromium: their header and breadcrumbs sit and
look as on a stock admin page (the run list) on the running Django version (issue 22, item 12:
on Django 6.1 their breadcrumbs were unstyled, outside the header bar)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_admin_page import ARTIFACTS, browser

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
__all__ = ["browser"]

STOCK = "/admin/django_generic_tasks/taskrun/"
# Where the header and breadcrumbs are, and how the breadcrumbs look (not their text).
MEASURE = """
const header = document.querySelector('#header');
const crumbs = document.querySelector('.breadcrumbs');
if (!header || !crumbs) { return null; }
const h = header.getBoundingClientRect(), c = crumbs.getBoundingClientRect();
const page = document.documentElement.clientWidth;  // a scrollbar narrows a long page
const style = getComputedStyle(crumbs);
return {
  header: [h.left, h.top, h.width - page, h.height],
  crumbs: [c.left, c.top - h.bottom, c.width - page],
  tag: crumbs.tagName,
  background: style.backgroundColor, color: style.color, padding: style.padding,
  font: style.fontSize, display: style.display,
  linkColour: getComputedStyle(crumbs.querySelector('a')).color,
};
"""


def log_in(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{url}/admin/login/?next={STOCK}")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys("password")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "task run" in d.title.lower())


@pytest.mark.parametrize(
    ("page", "name"),
    [
        ("/admin/django_generic_tasks/dashboard/", "dashboard"),
        ("/admin/django_generic_tasks/scheduleslot/", "schedules"),
    ],
)
def test_page_header_and_breadcrumbs_match_the_stock_admin(
    browser: Any, live_server: Any, admin_user: Any, page: str, name: str
) -> None:
    log_in(browser, live_server.url)
    stock = browser.execute_script(MEASURE)
    assert stock is not None
    browser.get(live_server.url + page)
    ours = browser.execute_script(MEASURE)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"admin-{name}-header.png"))
    assert ours is not None, f"{page} has no header or no breadcrumbs"
    assert ours == stock
