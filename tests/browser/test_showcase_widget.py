"""The widget on a shop's page, in a real browser: a plain HTML page served from another
origin (another port on 127.0.0.1) pastes the snippet; the approved testimonials of the
product render in the wall's iframe, its height follows the content, and a video plays.
Screenshots of the wall in both themes at 390 px and 1280 px go to tests/artifacts/."""

import io
import threading
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import pytest
from sqlalchemy import select

from app.clock import now
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.testimonials.models import Testimonial
from app.testimonials.moderation import apply_action
from app.testimonials.processing import process_due_videos
from tests.browser.conftest import screenshot
from tests.factories import item, order_body

pytestmark = pytest.mark.browser
PRODUCT = "p_wall"


def webm_clip(seconds=2, size=(180, 320)):
    """A real, playable VP8 WebM (its colour changes every frame), made with PyAV."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=15)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.time_base = Fraction(1, 15)
        for n in range(seconds * 15):
            frame = av.VideoFrame(*size, "yuv420p")
            for index, plane in enumerate(frame.planes):  # a colour that changes every frame
                plane.update(bytes([(n * 16 + index * 80) % 256]) * plane.buffer_size)
            frame.pts = n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def submit_through_the_link(client, app, n, clip):
    body = order_body(
        f"evt_wall_{n}",
        order_id=f"wall-{n}",
        items=[item(f"li_w{n}", PRODUCT, title="Wall mug")],
        customer={"email": f"wall{n}@example.com", "first_name": f"Walla{n}", "last_name": "Q"},
    )
    response = client.post("/webhooks/orders", json=body)
    assert response.status_code == 202, response.get_json()
    [request_id] = response.get_json()["created"]
    with app.app_context():
        token = db.session.get(TestimonialRequest, request_id).token
    page = client.get(f"/r/{token}").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = {"csrf_token": csrf, "consent": "yes", "text": f"Testimonial {n} for the wall"}
    if clip:
        data["video"] = (io.BytesIO(clip), "clip.webm", "video/webm")
    answer = client.post(f"/r/{token}", data=data, content_type="multipart/form-data")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    with app.app_context():
        return db.session.scalar(select(Testimonial.id).where(Testimonial.request_id == request_id))


@pytest.fixture(scope="module")
def wall_site(live_server):
    """Three testimonials of the product approved (two with a video), one left pending,
    and a shop's page on another port that pastes the snippet."""
    app = live_server["app"]
    client = app.test_client()
    clip = webm_clip()
    with app.app_context():
        from app.campaign_admin.services import create_campaign

        if not db.session.scalar(select(TestimonialRequest.id).where(TestimonialRequest.product_id == PRODUCT)):
            create_campaign(now(), name="Wall campaign", delay_days=0, include_products=[PRODUCT])
            db.session.commit()
    ids = [submit_through_the_link(client, app, n, clip if n != 3 else None) for n in range(1, 5)]
    with app.app_context():
        process_due_videos(now(), limit=50)  # the video job: posters and the version that plays everywhere
        db.session.commit()
        apply_action("approve", ids[:3], now())
        apply_action("feature", [ids[1]], now())
        db.session.commit()
    snippet = (
        f'<div data-testimonials data-product-id="{PRODUCT}"></div>\n'
        f'<script src="{live_server["url"]}/embed/widget.js" async></script>'
    )
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Wall mug — Shop</title></head><body>"
        f"<h1>Wall mug</h1><p>A mug for walls.</p>{snippet}<footer id='after'>Shop footer</footer></body></html>"
    )

    class ShopPage(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass

    shop = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    shop_url = f"http://127.0.0.1:{shop.server_address[1]}"
    old = app.config.get("EMBED_ALLOWED_ORIGINS")
    app.config["EMBED_ALLOWED_ORIGINS"] = shop_url  # what the merchant sets for their shop
    yield {"shop": shop_url, "ids": ids}
    app.config["EMBED_ALLOWED_ORIGINS"] = old
    shop.shutdown()
    shop.server_close()


def test_the_snippet_on_another_origin_shows_the_approved_testimonials_and_plays(browser, live_server, wall_site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(wall_site["shop"])
    frame_element = page.locator("[data-testimonials] iframe")
    frame_element.wait_for()
    wall = page.frame_locator("[data-testimonials] iframe")
    cards = wall.locator("article.card")
    cards.first.wait_for()
    assert cards.count() == 3  # the pending one is not there
    assert "Testimonial 2 for the wall" in cards.first.inner_text()  # featured first
    assert "Testimonial 4" not in wall.locator("main").inner_text()
    # The iframe's height follows the wall's content (no inner scroll bar).
    page.wait_for_function(
        "() => parseInt(document.querySelector('[data-testimonials] iframe').style.height) > 0 "
        "&& document.querySelector('[data-testimonials] iframe').style.height !== '420px'"
    )
    frame = frame_element.element_handle().content_frame()
    content = frame.evaluate("document.documentElement.scrollHeight")
    assert abs(frame_element.bounding_box()["height"] - content) <= 2
    screenshot(page, "widget-on-shop-page-1280")
    # Play: the video loads only now, and plays.
    assert cards.first.locator("img.poster").count() == 1  # poster first
    assert cards.first.locator("video").count() == 0
    cards.first.get_by_role("link", name="Play the video by Walla2 Q.").click()
    video = cards.first.locator("video")
    video.wait_for()
    frame.wait_for_function(
        "() => { const v = document.querySelector('article.card video');"
        " return v && v.readyState >= 2 && v.currentTime > 0; }",
        timeout=15_000,
    )
    assert frame.evaluate("document.cookie") == ""
    context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [390, 1280])
def test_wall_screenshots(browser, live_server, wall_site, theme, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server['url']}/embed/wall?product_id={PRODUCT}&theme={theme}")
    page.locator("article.card").first.wait_for()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(17, 20, 24)") == (theme == "dark")
    columns = page.evaluate("getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length")
    assert columns == 1 if width == 390 else columns >= 4
    screenshot(page, f"wall-{theme}-{width}")
    context.close()
