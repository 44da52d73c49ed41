"""The Settings screen: what it stores, which value wins, the logo's checks, and that a
save applies at once in every process (a second app on the same database stands for a
second process) — including the send times a new time zone or quiet hours move."""

import io

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.settings import current_settings
from app.settings.models import ShopSettings
from tests.conftest import AuthActions, csrf_from
from tests.factories import campaign as make_campaign
from tests.factories import create_request, events_of, fresh, order_body, outbox, post_order, row_counts, tick
from tests.images import SVG, png

FIELDS = (
    "shop_name",
    "brand_color",
    "email_from_name",
    "email_from",
    "reply_to",
    "timezone",
    "public_base_url",
    "quiet_hours",
    "consent_text",
)


def save(client, **values):
    data = {name: "" for name in FIELDS}
    data.update({k: v for k, v in values.items() if k != "logo"})
    data["csrf_token"] = csrf_from(client, "/settings/")
    if "logo" in values:
        data["logo"] = FileStorage(io.BytesIO(values["logo"]), filename="logo.png", content_type="image/png")
    # Encoded in memory: the test client would spool a big body to a file it never closes.
    boundary, body = encode_multipart(data)
    return client.post("/settings/", data=body, content_type=f'multipart/form-data; boundary="{boundary}"')


def source_of(page, field):
    start = page.index(f'data-field="{field}"')
    return " ".join(page[start : page.index("</div>", start)].split())


def test_the_screen_says_where_each_value_comes_from(logged_in, app_factory, monkeypatch):
    page = logged_in.get("/settings/").get_data(as_text=True)
    assert "Default" in source_of(page, "shop_name")
    assert "From the server's configuration (<code>PUBLIC_BASE_URL</code>)" in source_of(page, "public_base_url")
    assert save(logged_in, shop_name="Mugs & Co").status_code == 302
    page = logged_in.get("/settings/").get_data(as_text=True)
    assert "Saved here" in source_of(page, "shop_name")
    assert "This value wins over <code>SHOP_NAME</code> (“Demo Shop”)" in source_of(page, "shop_name")
    assert (
        'Mugs &amp; Co</span><span class="d-none d-xxl-inline"> · Testimonials' in page
    )  # the dashboard's own header, without a restart
    # A process started with SHOP_NAME in its environment says so (and the screen still wins).
    monkeypatch.setenv("SHOP_NAME", "Env Shop")
    db.session.rollback()  # this test's session ends its transaction (SQLite: one writer at a time)
    other = app_factory(SHOP_NAME="Env Shop")
    other_client = other.test_client()
    AuthActions(other_client, other).login()
    assert save(other_client, shop_name="").status_code == 302
    page = other_client.get("/settings/").get_data(as_text=True)
    assert (
        "From <code>SHOP_NAME</code>" in source_of(page, "shop_name")
        and 'Env Shop</span><span class="d-none d-xxl-inline"> · Testimonials' in page
    )


def test_a_save_applies_in_another_process_without_a_restart(logged_in, app, app_factory):
    other = app_factory()  # another process: its own engine and its own settings cache
    db.session.rollback()  # SQLite: one writer at a time; this test's session lets go
    with other.app_context():
        assert current_settings().shop_name == "Demo Shop"
    assert (
        save(
            logged_in,
            shop_name="Second Shop",
            brand_color="#00AA55",
            email_from="hi@second.example",
            email_from_name="Second's team",
            reply_to="help@second.example",
        ).status_code
        == 302
    )
    db.session.rollback()
    with other.app_context():
        shop = current_settings()
        assert (shop.shop_name, shop.brand_color) == ("Second Shop", "#00aa55")
        assert shop.sender == "Second's team <hi@second.example>" and shop.reply_to == "help@second.example"
        css = other.test_client().get(f"/brand/theme.css?v={shop.version}")
        assert "--brand: #00aa55" in css.get_data(as_text=True)
        assert "immutable" in css.headers["Cache-Control"]
    # Emptying a field hands it back to the environment / configuration.
    assert save(logged_in, shop_name="").status_code == 302
    db.session.rollback()
    with other.app_context():
        assert current_settings().shop_name == "Demo Shop"


def test_logo_upload_shows_everywhere_and_is_checked(logged_in, client):
    assert save(logged_in, logo=png(40, 10)).status_code == 302
    shop = current_settings()
    assert (shop.logo_type, shop.logo_width, shop.logo_height) == ("image/png", 40, 10)
    served = client.get(shop.logo_path())
    assert served.status_code == 200 and served.data == png(40, 10) and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert shop.logo_path() in logged_in.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    "upload, reason",
    [
        (SVG, "not a PNG, JPEG or WebP"),
        (png()[:40], "cut short"),
        (png()[:29] + b"\0\0\0\0" + png()[33:], "bad header checksum"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 40, "JPEG"),
        (b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 8, "WebP"),
        (png(5000, 1), "4096"),
        (png() + b"\0" * (600 * 1024), "at most 512 KB"),
    ],
)
def test_a_file_that_is_not_a_small_raster_image_is_refused(logged_in, upload, reason):
    before = row_counts()
    response = save(logged_in, shop_name="Should not stick", logo=upload)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert row_counts() == before and current_settings().shop_name == "Demo Shop"
    assert db.session.scalar(select(ShopSettings.logo)) is None


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("brand_color", "red", "#rrggbb"),
        ("brand_color", "#12345g", "#rrggbb"),
        ("email_from", "not an address", "email address"),
        ("reply_to", "a@b", "email address"),
        ("timezone", "Mars/Olympus", "not a time zone"),
        ("public_base_url", "ftp://x.example", "http or https"),
        ("public_base_url", "https://x.example/?a=1", "no query"),
        ("public_base_url", "https://x.example:abc", "port"),
        ("quiet_hours", "22-07", "21:00-08:00"),
        ("quiet_hours", "00:00-24:00", "never send"),
        ("shop_name", "x" * 81, "at most 80"),
        ("shop_name", "two\nlines", "single line"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(logged_in, field, value, message):
    version = current_settings().version
    response = save(logged_in, **{field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(ShopSettings.version)) == version


def test_a_new_time_zone_or_quiet_hours_replan_pending_sends(logged_in, client, app, clock):
    clock.set("2026-11-20T22:00:00Z")
    make_campaign(clock, channel="email", delay_days=0)
    [request_id] = post_order(client, order_body()).get_json()["created"]
    # Shop quiet hours 21:00-08:00 in UTC: the email due at 22:00 waits until 08:00.
    assert save(logged_in, quiet_hours="21:00-08:00").status_code == 302
    report = tick(clock)
    assert (report.deferred, report.sent) == (1, 0)
    [event] = events_of(request_id, "deferred")
    assert "the shop's quiet hours 21:00–08:00 UTC" in event.detail
    assert fresh(TestimonialRequest, request_id).next_send_at.isoformat() == "2026-11-21T08:00:00+00:00"
    # The shop moves to Tokyo (22:00 UTC is 07:00 there): the pending send is replanned to its
    # planned time, and the next tick defers it to 08:00 Tokyo time (23:00 UTC).
    response = save(logged_in, quiet_hours="21:00-08:00", timezone="Asia/Tokyo")
    assert response.status_code == 302
    assert "1 pending send replanned" in logged_in.get("/settings/").get_data(as_text=True)
    assert fresh(TestimonialRequest, request_id).next_send_at.isoformat() == "2026-11-20T22:00:00+00:00"
    tick(clock)
    assert fresh(TestimonialRequest, request_id).next_send_at.isoformat() == "2026-11-20T23:00:00+00:00"
    clock.set("2026-11-20T23:00:00Z")
    assert tick(clock).sent == 1


def test_links_and_the_sender_follow_the_settings(logged_in, client, clock):
    assert save(logged_in, public_base_url="https://reviews.mugs.example/", shop_name="Mugs").status_code == 302
    request_id = create_request(client, clock)
    tick(clock)
    [message] = outbox(request_id)
    assert "https://reviews.mugs.example/r/" in message.text
    assert "Mugs" in message.text


def test_the_logo_route_without_a_logo_is_a_clean_404(client):
    response = client.get("/brand/logo")
    assert response.status_code == 404


def test_dates_show_in_the_shops_time_zone_with_utc_in_the_tooltip(logged_in, client, clock):
    """One date format on every screen: "2026-11-20 13:00" in shop time, UTC on hover."""
    assert save(logged_in, timezone="Europe/Berlin").status_code == 302
    request_id = create_request(client, clock, delay_days=1)  # due 2026-11-21 12:00 UTC = 13:00 in Berlin
    listing = logged_in.get("/requests/").get_data(as_text=True)
    assert "Times are shop time (Europe/Berlin)" in listing and "sends 2026-11-21 13:00" in listing
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert (
        '<time datetime="2026-11-20T12:00:00+00:00" title="2026-11-20 13:00 CET · 2026-11-20 12:00:00 UTC">'
        "2026-11-20 13:00</time>" in detail
    )
    assert "Schedule (Europe/Berlin)" in detail
    home = logged_in.get("/").get_data(as_text=True)
    assert 'placeholder="YYYY-MM-DD"' in home and "From (UTC day)" in home and 'type="date"' not in home
    assert 'rel="icon" href="/static/favicon.svg"' in home
