"""The merchant's daily work in a real browser: log in, set up a campaign, fix a failed send."""

import csv
import io
import re

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SCREENS = [
    ("home", "/"),
    ("settings", "/settings/"),
    ("campaigns-list", "/campaigns/"),
    ("campaign-form", "/campaigns/new"),
    ("templates", "/templates/"),
    ("requests-log", "/requests/"),
    ("intake", "/intake/"),
    ("outbox", "/outbox/"),
    ("testimonials", "/testimonials/"),
    ("opt-outs", "/opt-outs/"),
]


def test_login_page_and_wrong_password(page):
    page.goto("/")
    page.wait_for_url("**/login**")
    screenshot(page, "login")
    page.get_by_label("Email").fill("browser@shop.example")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    assert "/login" in page.url


@pytest.mark.parametrize("name, path", SCREENS)
def test_every_screen_renders(logged_in_page, name, path):
    response = logged_in_page.goto(path)
    assert response.status == 200, f"{path}: {response.status}"
    assert logged_in_page.get_by_role("navigation").count() >= 1
    screenshot(logged_in_page, name)
    # On a phone the screen fits its width: wide tables scroll inside their card, page
    # lists wrap; the page itself never scrolls sideways.
    logged_in_page.set_viewport_size(PHONE)
    logged_in_page.reload()
    assert logged_in_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    screenshot(logged_in_page, f"{name}-phone")


def test_home_shows_figures_and_chart(logged_in_page):
    page = logged_in_page
    assert page.locator("svg.bar-chart rect").count() == 30
    assert re.match(r"\d+(\.\d)? %", page.locator('[data-kpi="Send success rate"]').inner_text())
    page.get_by_label("Period", exact=True).select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**period=7**")
    assert page.locator("svg.bar-chart rect").count() == 7


def test_create_a_campaign_then_change_its_reminders(logged_in_page):
    page = logged_in_page
    page.goto("/campaigns/new")
    page.get_by_label("Name").fill("Browser test campaign")
    page.get_by_label("Days after that to ask").fill("2")
    page.get_by_role("button", name="Save campaign").click()
    page.wait_for_load_state()
    assert page.get_by_text("Browser test campaign").first.is_visible()
    page.goto("/campaigns/")
    screenshot(page, "campaigns-list-after-create")
    page.get_by_role("link", name="Browser test campaign").first.click()
    reminders = page.get_by_label("Send reminders to customers who have not recorded yet")
    reminders.check()
    page.get_by_label("Days between reminders").fill("0")  # invalid while reminders are on
    page.get_by_role("button", name="Save campaign").click()
    assert page.get_by_text(re.compile("at least 1 day", re.I)).first.is_visible()
    page.get_by_label("Days between reminders").fill("5")
    page.get_by_label("Maximum reminders").fill("3")
    page.get_by_role("button", name="Save campaign").click()
    page.wait_for_load_state()
    page.goto("/campaigns/")
    page.get_by_role("link", name="Browser test campaign").first.click()
    assert page.get_by_label("Days between reminders").input_value() == "5"
    assert page.get_by_label("Maximum reminders").input_value() == "3"
    screenshot(page, "campaign-form-edit")


def test_retry_a_failed_row_from_the_requests_log(logged_in_page):
    page = logged_in_page
    page.goto("/requests/?status=failed")
    failed = page.locator("tr.row-failed").first
    failed.wait_for()
    request_id = failed.get_attribute("data-request-id")
    assert failed.locator(".badge").first.inner_text().strip() == "failed"
    screenshot(page, "requests-log-failed")
    page.goto(f"/requests/{request_id}")
    screenshot(page, "request-detail")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Retry", exact=True).first.click()
    page.wait_for_load_state()
    page.goto(f"/requests/{request_id}")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert "scheduled" in heading or "sent" in heading or "clicked" in heading, heading
    assert "failed" not in heading
    screenshot(page, "request-detail-after-retry")


def test_export_the_filter_as_csv(logged_in_page):
    page = logged_in_page
    page.goto("/requests/?status=submitted")
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8-sig") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    assert len(rows) > 1
    status_col = [h.lower() for h in rows[0]].index("status")
    assert {r[status_col] for r in rows[1:]} == {"submitted"}
