"""The customer's page in a real browser (Chromium with a synthetic camera): record, watch
the upload reach 100 %, send; resume after a dropped connection; the file picker when
recording cannot work; the plain form with JavaScript off. Screenshots of each state at
phone (390×844) and desktop (1280×800) sizes go to tests/artifacts/."""

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.testimonials.models import Testimonial
from app.testimonials.processing import process_due_videos
from tests import media
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
used_tokens = set()


def open_request_token(live_server):
    """A request of the demo shop whose link still takes a testimonial (one per test)."""
    with live_server["app"].app_context():
        rows = db.session.scalars(
            select(TestimonialRequest)
            .where(TestimonialRequest.status.in_(("sent", "clicked")))
            .order_by(TestimonialRequest.id.desc())
        ).all()
        token = next(r.token for r in rows if r.token not in used_tokens)
        db.session.remove()
    used_tokens.add(token)
    return token


def request_and_testimonial(live_server, token):
    with live_server["app"].app_context():
        req = db.session.scalar(select(TestimonialRequest).where(TestimonialRequest.token == token))
        testimonial = db.session.scalar(select(Testimonial).where(Testimonial.request_id == req.id))
        db.session.expunge_all()
        db.session.remove()
        return req, testimonial


def process_videos(live_server):
    with live_server["app"].app_context():
        counts = process_due_videos(datetime.now(UTC))
        db.session.commit()
        db.session.remove()
        return counts


@pytest.fixture
def customer(browser, live_server):
    """A fresh browser context per viewport (its own localStorage, IndexedDB, cookies)."""
    contexts = []

    def open_context(viewport, **options):
        context = browser.new_context(base_url=live_server["url"], viewport=viewport, **options)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield open_context
    for context in contexts:
        context.close()


def wait_uploaded(page):
    # Locators, not wait_for_function: the page's CSP (rightly) forbids evaluating strings.
    expect(page.locator("#progress-text")).to_have_text("100 % — your video is uploaded.", timeout=30_000)
    expect(page.locator("#progress-bar")).to_have_attribute("value", "100")
    assert page.locator("#upload_id").input_value()


def wait_timer(page, text):
    expect(page.locator("#timer")).to_have_text(text, timeout=10_000)


def test_record_three_seconds_upload_and_send_on_a_phone(customer, live_server):
    page = customer(PHONE, is_mobile=True, has_touch=True)
    token = open_request_token(live_server)
    page.goto(f"/r/{token}")
    record = page.get_by_role("button", name="Record", exact=True)
    assert record.is_visible() and page.locator("#fallback").is_hidden()
    assert page.get_by_role("button", name="Send my testimonial").is_visible()
    screenshot(page, "customer-phone-1-before")

    record.click()
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for()
    wait_timer(page, "0:02")
    screenshot(page, "customer-phone-2-recording")
    wait_timer(page, "0:03")
    stop.click()

    page.get_by_role("button", name="Record again").wait_for()
    assert page.locator("#playback").get_attribute("src").startswith("blob:")
    wait_uploaded(page)
    screenshot(page, "customer-phone-3-recorded")
    page.locator("label[for=rating-5]").click()
    page.get_by_label("…and a few words, if you like").fill("Recorded on my phone!")
    page.get_by_label(re.compile("may show my")).check()
    page.get_by_role("button", name="Send my testimonial").click()
    page.get_by_role("heading", name=re.compile("Thank you")).wait_for()
    screenshot(page, "customer-phone-4-thanks")

    req, testimonial = request_and_testimonial(live_server, token)
    assert req.status == "submitted"
    assert (testimonial.rating, testimonial.text, testimonial.video_status) == (5, "Recorded on my phone!", "pending")
    assert testimonial.video_content_type == "video/webm"
    assert process_videos(live_server)["ready"] >= 1
    _, done = request_and_testimonial(live_server, token)
    assert done.video_status == "ready", done.video_error
    assert 2.0 <= done.video_duration_seconds <= 5.0
    assert done.poster_key and done.playable_key and done.playable_content_type == "video/mp4"


def test_a_dropped_connection_mid_upload_resumes_from_its_offset_on_a_desktop(customer, live_server):
    page = customer(DESKTOP)
    # Small chunks so the recording goes up in several PATCHes.
    page.add_init_script("window.localStorage.setItem('testimonial-chunk-size', '65536')")
    token = open_request_token(live_server)
    patches, aborted = [], []

    def on_patch(route):
        request = route.request
        if request.method != "PATCH":
            return route.continue_()
        offset = int(request.headers["upload-offset"])
        patches.append(offset)
        if offset > 0 and not aborted:
            aborted.append(offset)
            return route.abort("connectionreset")  # the connection drops mid-upload
        return route.continue_()

    page.route(re.compile(r".*/uploads/[0-9a-f]{32}$"), on_patch)
    page.goto(f"/r/{token}")
    screenshot(page, "customer-desktop-1-before")
    page.get_by_role("button", name="Record", exact=True).click()
    page.get_by_role("button", name="Stop").wait_for()
    wait_timer(page, "0:02")
    screenshot(page, "customer-desktop-2-recording")
    wait_timer(page, "0:03")
    page.get_by_role("button", name="Stop").click()
    wait_uploaded(page)
    screenshot(page, "customer-desktop-3-recorded")

    assert aborted, f"no PATCH after the first: {patches}"
    cut_at = aborted[0]
    # After the drop the client asked for the offset and went on from it, not from zero.
    after = patches[patches.index(cut_at) + 1 :]
    assert after and after[0] == cut_at and 0 not in after, patches
    assert patches == sorted(patches)
    page.get_by_label(re.compile("may show my")).check()
    page.get_by_role("button", name="Send my testimonial").click()
    page.get_by_role("heading", name=re.compile("Thank you")).wait_for()
    req, testimonial = request_and_testimonial(live_server, token)
    assert req.status == "submitted" and testimonial.video_size > cut_at


def test_without_a_camera_the_page_offers_the_picker_the_link_and_a_qr_code(customer, live_server, tmp_path):
    page = customer(DESKTOP)
    # An in-app browser (Instagram's, Facebook's) has no getUserMedia.
    page.add_init_script("Object.defineProperty(navigator, 'mediaDevices', {value: undefined})")
    token = open_request_token(live_server)
    page.goto(f"/r/{token}")
    assert page.locator("#recorder").is_hidden()
    assert page.get_by_text("Recording in this page does not work here").is_visible()
    assert page.get_by_role("button", name="Copy link to open in your browser").is_visible()
    assert page.get_by_role("img", name="QR code of this page's link").is_visible()
    screenshot(page, "customer-desktop-fallback")
    clip = media.h264_mp4(tmp_path / "my-video.mp4", seconds=2)

    page.get_by_label("Record with your phone's camera app, or choose a video").set_input_files(str(clip))
    wait_uploaded(page)
    page.get_by_label("Your name as it will be shown").fill("Grace H.")
    page.get_by_label(re.compile("may show my")).check()
    page.get_by_role("button", name="Send my testimonial").click()
    page.get_by_role("heading", name=re.compile("Thank you")).wait_for()

    req, testimonial = request_and_testimonial(live_server, token)
    assert req.status == "submitted"
    assert (testimonial.display_name, testimonial.video_content_type) == ("Grace H.", "video/mp4")
    assert testimonial.video_size == clip.stat().st_size


def test_the_plain_form_works_with_javascript_off(customer, live_server, tmp_path):
    page = customer(PHONE, java_script_enabled=False)
    token = open_request_token(live_server)
    page.goto(f"/r/{token}")
    assert page.locator("#recorder").is_hidden()  # nothing of the recorder without its script
    clip = media.h264_mp4(tmp_path / "clip.mp4", seconds=1)
    page.get_by_label("Record or choose a short video").set_input_files(str(clip))
    page.get_by_label("…and a few words, if you like").fill("No JavaScript here")
    page.get_by_label(re.compile("may show my")).check()
    page.get_by_role("button", name="Send my testimonial").click()
    page.get_by_role("heading", name=re.compile("Thank you")).wait_for()
    screenshot(page, "customer-phone-nojs-thanks")

    req, testimonial = request_and_testimonial(live_server, token)
    assert req.status == "submitted"
    assert testimonial.text == "No JavaScript here" and testimonial.video_size == clip.stat().st_size
