"""Browser tests: the real app served by werkzeug on 127.0.0.1, driven by Playwright
through Debian's Chromium (never Playwright's own download: `make browser` installs it)."""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import create_app
from app.extensions import db
from tests.conftest import make_config
from tests.live_server import serving

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ADMIN = ("browser@shop.example", "correct horse battery staple")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, migrated_db):
    """The real app on a fresh migrated database with demo history, one failed row at least."""
    from app.auth.services import create_admin
    from app.demo.seed import seed_demo

    tmp = tmp_path_factory.mktemp("browser")
    db_file = tmp / "browser.db"
    shutil.copy(migrated_db, db_file)
    app = create_app(
        make_config(tmp, db_file, SCHEDULER_ENABLED=False, WTF_CSRF_ENABLED=True, PUBLIC_BASE_URL="http://127.0.0.1")
    )
    with app.app_context():
        seed_demo(datetime.now(UTC))
        create_admin(*ADMIN, datetime.now(UTC))
        db.session.commit()
    with serving(app) as url:
        yield {"url": url, "app": app}
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                # The customer's recorder: a synthetic camera and microphone, permission granted.
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server["url"], accept_downloads=True, viewport={"width": 1400, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    # The Content-Security-Policy (app/security.py) must block nothing the dashboard uses.
    blocked = []
    page.on(
        "console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None
    )
    yield page
    context.close()
    assert not blocked, f"the page's Content-Security-Policy blocked: {blocked[:3]}"


@pytest.fixture
def logged_in_page(page):
    page.goto("/login")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    return page


def screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
