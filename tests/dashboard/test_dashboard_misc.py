"""Testimonials, intake log, outbox and opt-out screens, and login on every dashboard page."""

import html
import io
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.optouts.models import OptOut
from app.testimonials.models import Testimonial
from tests.conftest import AuthActions, csrf_from
from tests.factories import campaign, item, order_body

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 8

PAGES = [
    "/campaigns/",
    "/campaigns/new",
    "/campaigns/1",
    "/campaigns/1/archive",
    "/templates/",
    "/templates/new",
    "/templates/1",
    "/testimonials/",
    "/testimonials/1/video",
    "/testimonials/1/download",
    "/intake/",
    "/outbox/",
    "/opt-outs/",
]
ACTIONS = [
    "/campaigns/new",
    "/campaigns/1",
    "/campaigns/1/pause",
    "/campaigns/1/resume",
    "/campaigns/1/archive",
    "/templates/new",
    "/templates/1",
    "/templates/1/test",
    "/testimonials/1/approve",
    "/testimonials/1/reject",
    "/testimonials/bulk",
    "/opt-outs/",
    "/opt-outs/1/remove",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_needs_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", ACTIONS)
def test_every_action_needs_a_login(client, app, url):
    app.config["WTF_CSRF_ENABLED"] = False  # prove the login check, not the CSRF check, refuses
    response = client.post(url, data={})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_the_live_preview_answers_a_logged_out_editor_in_json(client, app):
    app.config["WTF_CSRF_ENABLED"] = False
    response = client.post("/templates/preview", data={"text": "Hi"})
    assert response.status_code == 401
    assert "log in" in response.get_json()["error"]


def test_navigation_links_every_screen(logged_in):
    page = logged_in.get("/").get_data(as_text=True)
    for url in ("/campaigns/", "/templates/", "/testimonials/", "/intake/", "/outbox/", "/opt-outs/"):
        assert f'href="{url}"' in page


def test_a_missing_record_leads_back_to_its_list(logged_in):
    for url, back in (
        ("/requests/999999", 'href="/requests/">Back to the Requests Log</a>'),
        ("/campaigns/999", 'href="/campaigns/">Back to Campaigns</a>'),
        ("/templates/999", 'href="/templates/">Back to Templates</a>'),
    ):
        response = logged_in.get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 404 and back in page and 'href="/">Back to the dashboard' in page
    assert "Back to the Requests Log" not in logged_in.get("/no-such-page").get_data(as_text=True)


# -- overview -------------------------------------------------------------------------


def test_overview_statuses_open_the_same_requests_in_the_log(logged_in, client, clock, cli):
    campaign(clock, delay_days=0)
    client.post("/webhooks/orders", json=order_body())
    client.post("/webhooks/orders", json=order_body("evt_2", order_id="1002", customer={"email": "x@fail.test"}))
    cli("dispatch")
    home = logged_in.get("/").get_data(as_text=True)
    links = dict(re.findall(r'<a href="([^"]+)" data-status="(\w+)">', home))
    assert sorted(links.values()) == ["failed", "sent"]
    for link, status in links.items():
        log = logged_in.get(html.unescape(link)).get_data(as_text=True)
        assert "Showing 1–1 of 1 request." in log and f'data-status="{status}"' in log
        assert "created_from=" in link and "created_to=" in link
    assert "p95: 95 % of cases were at least this fast" in home


# -- testimonials ---------------------------------------------------------------------


def submitted(client, clock, *, video=True, text="Love this mug, use it every day."):
    campaign(clock, delay_days=0)
    client.post("/webhooks/orders", json=order_body())
    req = db.session.scalars(select(TestimonialRequest)).one()
    data = {"text": text, "consent": "yes", "csrf_token": csrf_from(client, f"/r/{req.token}")}
    if video:
        data["video"] = (io.BytesIO(MP4), "my clip.mp4", "video/mp4")
    response = client.post(f"/r/{req.token}", data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    return db.session.scalars(select(Testimonial)).one()


def test_testimonials_list_shows_player_text_product_and_customer(logged_in, client, clock):
    testimonial = submitted(client, clock)
    page = logged_in.get("/testimonials/").get_data(as_text=True)
    assert "Love this mug, use it every day." in page
    assert "Blue mug" in page and "a•••@example.com" in page and "order 1001" in page
    assert "ada@example.com" not in page  # masked in the list, in full on the request's page
    assert f'<source src="/testimonials/{testimonial.id}/video" type="video/mp4">' in page
    assert f"/testimonials/{testimonial.id}/download" in page


def test_a_submitted_request_leads_to_its_testimonial_and_back(logged_in, client, clock):
    testimonial = submitted(client, clock)
    request_id = testimonial.request_id
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "The customer sent a testimonial" in detail and "(with a video)" in detail
    assert "Love this mug, use it every day." in detail
    assert f'href="/testimonials/?request={request_id}"' in detail
    one = logged_in.get(f"/testimonials/?request={request_id}").get_data(as_text=True)
    assert f'id="testimonial-{testimonial.id}"' in one and f'href="/requests/{request_id}"' in one
    assert "Show all testimonials" in one
    other = logged_in.get(f"/testimonials/?request={request_id + 1}")
    assert other.status_code == 200 and f"Request #{request_id + 1} has no stored testimonial." in other.get_data(
        as_text=True
    )
    refused = logged_in.get("/testimonials/?request=abc")  # a clear 400, like a bad status
    assert refused.status_code == 400 and "request must be a number" in refused.get_data(as_text=True)


def test_approve_then_reject(logged_in, client, clock, form_post):
    testimonial = submitted(client, clock)
    response = form_post("/testimonials/", f"/testimonials/{testimonial.id}/approve")
    assert response.status_code == 303
    db.session.expire_all()
    assert testimonial.status == "approved"
    assert "approved" in logged_in.get("/testimonials/?status=approved").get_data(as_text=True)
    form_post("/testimonials/", f"/testimonials/{testimonial.id}/reject")
    db.session.expire_all()
    assert testimonial.status == "rejected"
    assert "No testimonials match this filter." in logged_in.get("/testimonials/?status=approved").get_data(
        as_text=True
    )


def test_moderation_without_csrf_token_is_refused(logged_in, client, clock):
    testimonial = submitted(client, clock)
    assert logged_in.post(f"/testimonials/{testimonial.id}/approve").status_code == 400
    db.session.expire_all()
    assert testimonial.status == "pending"


def test_unknown_moderation_action_is_404(logged_in, client, clock, form_post):
    testimonial = submitted(client, clock)
    assert form_post("/testimonials/", f"/testimonials/{testimonial.id}/delete").status_code == 404


def test_video_is_served_with_its_type_and_range_requests(logged_in, client, clock):
    testimonial = submitted(client, clock)
    with logged_in.get(f"/testimonials/{testimonial.id}/video") as response:
        assert response.status_code == 200
        assert response.mimetype == "video/mp4"
        assert response.data == MP4
        assert response.headers["Accept-Ranges"] == "bytes"
    with logged_in.get(f"/testimonials/{testimonial.id}/video", headers={"Range": "bytes=4-11"}) as partial:
        assert partial.status_code == 206
        assert partial.data == b"ftypmp42"
    with logged_in.get(f"/testimonials/{testimonial.id}/download") as download:
        assert download.headers["Content-Disposition"] == (
            f"attachment; filename=testimonial-{testimonial.id}-order-1001.mp4"
        )
        assert download.data == MP4


def test_video_is_only_served_to_a_logged_in_merchant(client, clock, auth):
    testimonial = submitted(client, clock)
    response = client.get(f"/testimonials/{testimonial.id}/video")
    assert response.status_code == 302 and MP4 not in response.data


def test_text_only_testimonial_has_no_player_and_no_video(logged_in, client, clock):
    testimonial = submitted(client, clock, video=False)
    page = logged_in.get("/testimonials/").get_data(as_text=True)
    assert "<video" not in page
    assert logged_in.get(f"/testimonials/{testimonial.id}/video").status_code == 404


# -- intake log -----------------------------------------------------------------------


def test_intake_log_shows_each_item_outcome(logged_in, client, clock):
    campaign(clock, exclude_products=["p_gift"])
    client.post("/webhooks/orders", json=order_body(items=[item("li_1", "p_1"), item("li_2", "p_gift")]))
    req = db.session.scalars(select(TestimonialRequest)).one()
    page = logged_in.get("/intake/").get_data(as_text=True)
    assert "1001" in page and 'title="order.delivered">Order delivered<' in page
    assert (
        "from order webhook" in page and ">generic<" not in page and "<th>Received</th>" in page and ' UTC"' in page
    )  # shop time, UTC in the tooltip
    assert "created" in page and f'href="/requests/{req.id}"' in page
    assert "skipped" in page and "p_gift" in page


def test_intake_log_search_by_order_id(logged_in, client, clock):
    campaign(clock)
    client.post("/webhooks/orders", json=order_body("evt_a", order_id="1001"))
    client.post("/webhooks/orders", json=order_body("evt_b", order_id="2002"))
    page = logged_in.get("/intake/?order_id=2002").get_data(as_text=True)
    assert "evt_b" in page and "evt_a" not in page
    assert "evt_b" in logged_in.get("/intake/?order_id=%232002").get_data(as_text=True)
    assert "No webhook for order" in logged_in.get("/intake/?order_id=9999").get_data(as_text=True)


def test_intake_log_is_paginated_newest_first(logged_in, client, clock):
    campaign(clock)
    for n in range(52):
        clock.advance(seconds=1)
        client.post("/webhooks/orders", json=order_body(f"evt_{n}", order_id=str(5000 + n)))
    first = logged_in.get("/intake/").get_data(as_text=True)
    assert "evt_51" in first and "evt_1<" not in first
    second = logged_in.get("/intake/?page=2").get_data(as_text=True)
    assert "evt_0<" in second and "evt_51" not in second
    assert "52 webhooks" in first


# -- outbox ---------------------------------------------------------------------------


def test_outbox_shows_email_html_in_a_sandboxed_iframe(logged_in, client, clock, cli):
    campaign(clock, delay_days=0, channel="both")
    client.post("/webhooks/orders", json=order_body())
    cli("dispatch")
    page = logged_in.get("/outbox/").get_data(as_text=True)
    assert '<iframe class="email-frame" sandbox="" srcdoc="' in page
    assert 'srcdoc="&lt;' in page  # the HTML is escaped into the attribute, never inlined
    assert 'class="sms-bubble"' in page
    # Recipients are masked in this list like everywhere else (in full on the request's page).
    assert "a•••@example.com" in page and "+1•••••4567" in page
    assert "ada@example.com" not in page and "+15551234567" not in page
    assert "keeps every email and SMS message here" in page and ">SMS</span>" in page and ">sms<" not in page


def test_outbox_filters_by_request_and_recipient(logged_in, client, clock, cli):
    campaign(clock, delay_days=0)
    client.post("/webhooks/orders", json=order_body("e1", order_id="1"))
    client.post("/webhooks/orders", json=order_body("e2", order_id="2", customer={"email": "bob@example.com"}))
    cli("dispatch")
    bob = db.session.scalars(select(TestimonialRequest).where(TestimonialRequest.order_id == "2")).one()
    by_request = logged_in.get(f"/outbox/?request_id={bob.id}").get_data(as_text=True)
    assert "b•••@example.com" in by_request and "a•••@example.com" not in by_request
    by_recipient = logged_in.get("/outbox/?to=ADA@").get_data(as_text=True)
    assert "a•••@example.com" in by_recipient and "b•••@example.com" not in by_recipient
    assert "No message matches" in logged_in.get("/outbox/?to=nobody").get_data(as_text=True)


def test_outbox_is_not_shown_when_real_providers_are_configured(app_factory):
    other = app_factory(EMAIL_PROVIDER="sendgrid", SMS_PROVIDER="twilio")
    with other.app_context():
        client = other.test_client()
        auth = AuthActions(client, other)
        auth.create()
        auth.login()
        assert client.get("/outbox/").status_code == 404
        assert 'href="/outbox/"' not in client.get("/").get_data(as_text=True)


# -- opt-outs -------------------------------------------------------------------------


def test_add_an_opt_out_by_hand_cancels_pending_requests(logged_in, client, clock, form_post):
    campaign(clock)
    client.post("/webhooks/orders", json=order_body())
    response = form_post("/opt-outs/", data={"channel": "email", "contact": " Ada@Example.com ", "detail": "phoned"})
    assert response.status_code == 303
    row = db.session.scalars(select(OptOut)).one()
    assert (row.channel, row.contact, row.source) == ("email", "ada@example.com", "merchant")
    assert row.detail == "added by merchant@shop.example: phoned"
    db.session.expire_all()
    assert db.session.scalars(select(TestimonialRequest)).one().status == "cancelled"
    page = logged_in.get("/opt-outs/").get_data(as_text=True)
    assert "ada@example.com" in page and "added by the merchant" in page and "pending requests are cancelled" in page
    link = re.search(r'href="(/requests/\?q=[^"]+)">Their requests<', page).group(1)
    requests_log = logged_in.get(html.unescape(link)).get_data(as_text=True)
    assert "Showing 1–1 of 1 request." in requests_log and "cancelled" in requests_log


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"channel": "email", "contact": "not-an-address"}, "is not an email address."),
        ({"channel": "sms", "contact": "555-1234"}, "is not a phone number in international format"),
        ({"channel": "sms", "contact": ""}, "Enter the email address or phone number."),
    ],
)
def test_invalid_opt_out_is_explained_and_not_added(logged_in, form_post, data, message):
    response = form_post("/opt-outs/", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalars(select(OptOut)).all() == []


def test_remove_an_opt_out(logged_in, form_post):
    form_post("/opt-outs/", data={"channel": "sms", "contact": "+1 555 123 4567"})
    row = db.session.scalars(select(OptOut)).one()
    assert row.contact == "+15551234567"
    page = logged_in.get("/opt-outs/").get_data(as_text=True)
    assert "data-confirm=" in page
    assert form_post("/opt-outs/", f"/opt-outs/{row.id}/remove").status_code == 303
    db.session.expire_all()
    assert db.session.scalars(select(OptOut)).all() == []


def test_opt_out_posts_without_csrf_token_change_nothing(logged_in, form_post):
    form_post("/opt-outs/", data={"channel": "email", "contact": "keep@example.com"})
    row = db.session.scalars(select(OptOut)).one()
    assert logged_in.post(f"/opt-outs/{row.id}/remove").status_code == 400
    assert logged_in.post("/opt-outs/", data={"channel": "email", "contact": "new@example.com"}).status_code == 400
    db.session.expire_all()
    assert [r.contact for r in db.session.scalars(select(OptOut))] == ["keep@example.com"]


def test_opt_out_list_search(logged_in, form_post):
    form_post("/opt-outs/", data={"channel": "email", "contact": "alice@example.com"})
    form_post("/opt-outs/", data={"channel": "sms", "contact": "+15550001111"})
    logged_in.get("/opt-outs/")  # shows (and clears) the confirmation message
    # the list shows contacts masked, as the Requests Log does; the search takes them whole
    page = logged_in.get("/opt-outs/?q=ALICE").get_data(as_text=True)
    assert "a•••@example.com" in page and "+1•••••1111" not in page
    assert ">alice@example.com<" not in page and "Remove alice@example.com" not in page
    assert "q=alice@example.com" in page  # the link to their requests searches the whole address
    page = logged_in.get("/opt-outs/?channel=sms").get_data(as_text=True)
    assert "a•••@example.com" not in page and "+1•••••1111" in page
    assert "+15550001111" not in page
    page = logged_in.get("/opt-outs/?q=alice@example.com").get_data(as_text=True)
    assert "a•••@example.com" in page
