"""A merchant's first hour in a real browser: the Settings screen changes the shop's name,
logo and brand colour, and the dashboard, the customer's page and a test email show them at
once (no restart). Screenshots of the overview, the Requests Log, Settings, an email and the
customer's page at 1280 and 390 px go to tests/artifacts/ (not committed)."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.campaigns.models import MessageTemplate
from app.clock import now
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.outbox.models import OutboxMessage
from app.settings_admin.services import save_settings
from tests.browser.conftest import ADMIN, screenshot
from tests.images import png

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
BRAND = "#c2255c"
BRAND_RGB = "rgb(194, 37, 92)"
DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
# Load and play a <video> muted; resolves with what the element reports once time has moved.
PLAY = """video => new Promise(done => {
  const fail = () => done({error: video.error ? video.error.code : "no source played"});
  video.muted = true;
  video.preload = "auto";
  video.addEventListener("error", fail, {once: true});
  video.querySelectorAll("source").forEach(s => s.addEventListener("error", () => {
    if (video.networkState === HTMLMediaElement.NETWORK_NO_SOURCE) fail();
  }));
  video.addEventListener("timeupdate", function moved() {
    if (video.currentTime > 0) {
      video.removeEventListener("timeupdate", moved);
      video.pause();
      done({width: video.videoWidth, duration: video.duration, time: video.currentTime, src: video.currentSrc});
    }
  });
  video.load();
  video.play().catch(e => done({error: String(e)}));
})"""


@pytest.fixture
def merchant(browser, live_server):
    contexts = []

    def open_page(viewport):
        context = browser.new_context(base_url=live_server["url"], viewport=viewport)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Email").fill(ADMIN[0])
        page.get_by_label("Password").fill(ADMIN[1])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")
        return page

    yield open_page
    for context in contexts:
        context.close()
    with live_server["app"].app_context():  # the other browser tests see the demo shop again
        save_settings({name: "" for name in ("shop_name", "brand_color", "public_base_url")}, now(), remove_logo=True)
        db.session.commit()
        db.session.remove()


def in_app(live_server, query):
    with live_server["app"].app_context():
        result = query()
        db.session.expunge_all()
        db.session.remove()
        return result


def test_settings_change_the_brand_everywhere_without_a_restart(merchant, browser, live_server, tmp_path):
    page = merchant(WIDTHS["desktop"])
    page.goto("/settings/")
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(160, 40, (194, 37, 92)))
    page.get_by_label("Upload a new logo").set_input_files(str(logo))
    page.get_by_label("Shop name").fill("Harbor Mugs")
    page.get_by_label("Brand colour").fill(BRAND)
    page.get_by_label("Public address").fill(live_server["url"])  # so the email's logo loads here
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved; they apply now.")).to_be_visible()
    expect(page.locator('.settings-source[data-field="shop_name"]')).to_contain_text("Saved here")

    # The dashboard: the name and logo in the navigation bar, the colour under it.
    page.goto("/")
    expect(page.locator(".nav-shop-name")).to_have_text("Harbor Mugs")
    expect(page.locator("nav.navbar")).to_have_css("border-bottom-color", BRAND_RGB)
    logo_src = page.locator("img.nav-logo").get_attribute("src")
    served = page.request.get(logo_src)
    assert served.status == 200 and served.headers["content-type"] == "image/png" and served.body() == logo.read_bytes()
    expect(page).to_have_title("Overview · Harbor Mugs testimonials")

    # The customer's page.
    token = in_app(
        live_server,
        lambda: db.session.scalars(
            select(TestimonialRequest.token)
            .where(TestimonialRequest.status.in_(("sent", "clicked")))
            .order_by(TestimonialRequest.id)
        ).first(),
    )
    page.goto(f"/r/{token}")
    expect(page.locator(".shop-name").first).to_have_text("Harbor Mugs")
    expect(page.locator("img.shop-logo").first).to_have_attribute("src", logo_src)
    expect(page.locator("button[type=submit]").first).to_have_css("background-color", BRAND_RGB)

    # A test email from the Templates screen, read in the outbox.
    template_id = in_app(
        live_server,
        lambda: db.session.scalar(
            select(MessageTemplate.id).where(
                MessageTemplate.channel == "email", MessageTemplate.kind == "initial", MessageTemplate.is_default
            )
        ),
    )
    page.goto(f"/templates/{template_id}")
    page.get_by_label("Send a test to").fill("first-hour@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test sent to first-hour@example.com")).to_be_visible()
    email = in_app(
        live_server,
        lambda: db.session.scalars(select(OutboxMessage).where(OutboxMessage.to == "first-hour@example.com")).one(),
    )
    assert email.subject.startswith("[Test] ") and "Harbor Mugs" in email.text
    assert f'src="{live_server["url"]}{logo_src}"' in email.html and f"background:{BRAND}" in email.html
    page.goto("/outbox/?to=first-hour%40example.com")
    expect(page.locator("iframe.email-frame").first).to_be_visible()

    # The demo's Testimonials screen: its videos play in this browser (decoded frames, time
    # moving), the H.264 copy first as the dashboard's player offers it.
    page.goto("/testimonials/?has_video=yes")
    players = page.locator("video.testimonial-player")
    expect(players.first).to_be_visible()
    assert players.count() >= 4  # the demo's four, and any the customer-page test recorded
    for index in range(players.count()):
        played = players.nth(index).evaluate(PLAY)
        assert played.get("error") is None, played
        assert played["width"] > 0 and played["duration"] > 0 and played["time"] > 0, played
    screenshot(page, "first-hour-testimonials-desktop")

    # Screenshots at both widths, the email as the customer's mail app shows it.
    for name, viewport in WIDTHS.items():
        shot = page if name == "desktop" else merchant(viewport)
        for screen, path in (
            ("overview", "/"),
            ("requests-log", "/requests/"),
            ("settings", "/settings/"),
            ("customer-page", f"/r/{token}"),
        ):
            shot.goto(path)
            # the page fits the window: a logo and a long name do not widen the dashboard
            assert shot.evaluate("document.documentElement.scrollWidth") <= viewport["width"], (screen, name)
            screenshot(shot, f"first-hour-{screen}-{name}")
        # A blank page of its own: the dashboard's CSP (no inline styles) is not a mail app's.
        mail_app = browser.new_page(viewport=viewport)
        mail_app.set_content(email.html)
        mail_app.wait_for_load_state("networkidle")
        screenshot(mail_app, f"first-hour-email-{name}")
        mail_app.close()
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):  # the README's picture: UPDATE_DOCS_SCREENSHOT=1 pytest …
        page.goto("/")
        page.screenshot(path=str(DOCS / "overview.png"))
