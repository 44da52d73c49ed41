"""The customer's page beyond the form fields: the campaign's prompt and wording, rating,
display name, consent record, thank-you text, "Not arrived yet?", the clear pages for
links that cannot be used, and the headers the recorder needs (camera, blob: media)."""

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.testimonials.models import Testimonial
from tests.factories import (
    csrf_token_for,
    event_types,
    events_of,
    request_row,
    row_counts,
    sent_request,
    submit_testimonial,
    tick,
)

PROMPT = {
    "prompt_heading": "Tell us about your new mug",
    "prompt_questions": ["What made you choose it?", "How do you use it?"],
    "consent_text": "Mugs & Co may quote me on mugs.example and Instagram.",
    "thank_you_text": "Here is 10 % off your next order: THANKS10",
}


@pytest.fixture
def request_id(client, clock):
    return sent_request(client, clock, reminder_delay_days=4, **PROMPT)


@pytest.fixture
def token(request_id):
    return request_row(request_id).token


def the_testimonial():
    db.session.expire_all()
    return db.session.scalars(select(Testimonial)).one()


def test_the_page_shows_the_product_the_campaigns_prompt_and_the_recorder(client, token):
    response = client.get(f"/r/{token}")
    html = response.get_data(as_text=True)

    assert 'src="https://shop.example/mug.jpg"' in html and "Blue mug" in html
    assert "<h1>Tell us about your new mug</h1>" in html
    assert "<li>What made you choose it?</li>" in html and "<li>How do you use it?</li>" in html
    assert "Mugs &amp; Co may quote me on mugs.example and Instagram." in html
    assert 'value="Ada L."' in html  # first name + last initial, editable
    for n in range(1, 6):
        assert f'id="rating-{n}" value="{n}"' in html
    # The recorder's buttons and the plain form that works without JavaScript.
    for name in ("Record", "Stop", "Record again", "Send my testimonial", "Copy link to open in your browser"):
        assert f">{name}</button>" in html
    assert 'accept="video/*" capture="user"' in html and 'enctype="multipart/form-data"' in html
    assert 'data-max-seconds="90"' in html and f'data-upload-endpoint="/r/{token}/uploads"' in html
    assert 'src="data:image/svg+xml' in html  # the QR code of the link, made on the server
    # Scripts only from our own origin: no inline script at all.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "/static/vendor/tus.min.js" in html and "/static/recorder.js" in html
    assert f"/r/{token}/postpone" in html and "Not arrived yet?" in html


def test_the_page_allows_camera_microphone_and_blob_media_and_nothing_inline(client, token):
    response = client.get(f"/r/{token}")
    policy = response.headers["Content-Security-Policy"]
    assert "media-src 'self' blob:" in policy and "img-src 'self' data: blob:" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["Permissions-Policy"].startswith("camera=(self), microphone=(self)")
    assert response.headers["Referrer-Policy"] in ("no-referrer", "same-origin")  # the token stays ours
    for asset in ("/static/recorder.js", "/static/vendor/tus.min.js", "/static/public.css"):
        served = client.get(asset)
        assert served.status_code == 200 and served.data
        served.close()


def test_a_submission_stores_rating_name_and_the_exact_consent(client, clock, token, request_id):
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    response = submit_testimonial(client, token, text="Lovely", rating="4", display_name="  Ada   from Leeds ")
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "Here is 10 % off your next order: THANKS10" in html
    saved = the_testimonial()
    assert (saved.rating, saved.display_name, saved.text) == (4, "Ada from Leeds", "Lovely")
    assert saved.consent_text == PROMPT["consent_text"]
    assert (saved.consent_at, saved.consent_ip) == (clock(), "203.0.113.9")
    assert (saved.video_status, saved.has_video) == ("none", False)


def test_an_empty_display_name_falls_back_to_first_name_and_last_initial(client, token):
    assert submit_testimonial(client, token, text="Nice", display_name="").status_code == 200
    assert the_testimonial().display_name == "Ada L."


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"rating": "6"}, "between 1 and 5 stars"),
        ({"rating": "abc"}, "between 1 and 5 stars"),
        ({"display_name": "x" * 61}, "under 60 characters"),
    ],
)
def test_bad_rating_or_name_is_refused_and_stores_nothing(client, token, request_id, form, message):
    csrf = csrf_token_for(client, f"/r/{token}")
    before = row_counts()
    response = submit_testimonial(client, token, text="Nice", csrf=csrf, **form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert row_counts() == before
    assert request_row(request_id).status == "clicked"


def test_without_a_campaign_wording_the_consent_is_the_shops(client, clock):
    token = request_row(sent_request(client, clock)).token
    submit_testimonial(client, token, text="Nice")
    assert the_testimonial().consent_text == "Demo Shop may show my testimonial and first name on its website."


def test_a_used_link_says_so_on_the_page_and_the_upload_endpoint(client, token):
    assert submit_testimonial(client, token, text="Nice").status_code == 200
    page = client.get(f"/r/{token}").get_data(as_text=True)
    assert "We already received your testimonial" in page and "Send my testimonial" not in page
    again = submit_testimonial(client, token, text="Again", csrf=csrf_token_for(client, "/login"))
    assert again.status_code == 409


def test_an_unknown_link_is_the_shops_page(client):
    response = client.get("/r/not-a-token")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Demo Shop" in html and "We can't find this link" in html and "404 Not Found" not in html


# -- "Not arrived yet?" --------------------------------------------------------------------


def test_postponing_moves_the_next_reminder_back_once_and_is_recorded(client, clock, request_id, token):
    before = request_row(request_id)
    planned, expires = before.next_send_at, before.expires_at
    ask = client.get(f"/r/{token}/postpone")
    assert ask.status_code == 200 and "Remind me in 7 days" in ask.get_data(as_text=True)
    assert request_row(request_id).postponed_at is None  # opening the link (a mail scanner) changes nothing

    done = client.post(f"/r/{token}/postpone", data={"csrf_token": csrf_token_for(client, f"/r/{token}/postpone")})

    assert done.status_code == 200 and "we'll wait 7 days" in done.get_data(as_text=True)
    after = request_row(request_id)
    assert after.next_send_at - planned == __import__("datetime").timedelta(days=7)
    assert after.expires_at - expires == __import__("datetime").timedelta(days=7)
    assert after.postponed_at == clock()
    [event] = events_of(request_id, "postponed")
    assert "moved back 7 days" in event.detail
    # The reminder really waits: nothing at its old time, it goes at the new one.
    clock.set(planned)
    assert tick(clock).sent == 0
    clock.set(after.next_send_at)
    assert tick(clock).sent == 1

    second = client.post(f"/r/{token}/postpone", data={"csrf_token": csrf_token_for(client, f"/r/{token}")})
    assert second.status_code == 409
    assert "can only be moved once" in second.get_data(as_text=True)
    assert event_types(request_id).count("postponed") == 1
    assert "Not arrived yet?" not in client.get(f"/r/{token}").get_data(as_text=True)


def test_the_postpone_page_names_days_in_the_shops_time_zone(app_factory, clock):
    """A reminder due at 02:00 UTC on December 4 comes on December 3 for a shop in New
    York: the customer reads the shop's day, not UTC's."""
    from app.lifecycle.models import TestimonialRequest
    from tests.conftest import parse

    app = app_factory(SHOP_TIMEZONE="America/New_York")
    client = app.test_client()
    with app.app_context():
        request_id = sent_request(client, clock, reminder_delay_days=4)
        req = db.session.get(TestimonialRequest, request_id)
        req.next_send_at = parse("2026-11-27T02:00:00Z")  # 21:00 on November 26 in New York
        db.session.commit()
        path = f"/r/{req.token}/postpone"

        done = client.post(path, data={"csrf_token": csrf_token_for(client, path)})
        again = client.get(path)

    assert done.status_code == 200
    assert "will come after December 3." in done.get_data(as_text=True)  # Dec 4, 02:00 UTC
    # Postponed at the clock's 12:00 UTC on November 20: 07:00 the same day in New York.
    assert "moved your reminder back on November 20" in again.get_data(as_text=True)


def test_a_campaign_edit_keeps_the_customers_postponement(client, clock, request_id, token):
    from app.campaign_admin.services import update_campaign
    from app.campaigns.models import Campaign

    client.post(f"/r/{token}/postpone", data={"csrf_token": csrf_token_for(client, f"/r/{token}/postpone")})
    postponed = request_row(request_id).next_send_at
    update_campaign(
        db.session.get(Campaign, request_row(request_id).campaign_id), clock(), prompt_heading="A new heading"
    )
    db.session.commit()
    assert request_row(request_id).next_send_at == postponed


def test_postponing_a_closed_or_used_link(client, clock, token, request_id):
    assert submit_testimonial(client, token, text="Nice").status_code == 200
    response = client.post(f"/r/{token}/postpone", data={"csrf_token": csrf_token_for(client, "/login")})
    assert response.status_code == 409 and "already received" in response.get_data(as_text=True)
    assert request_row(request_id).postponed_at is None
    assert client.get("/r/not-a-token/postpone").status_code == 404


def test_messages_can_link_to_the_postponement(client, clock, request_id):
    from app.campaigns.rendering import VARIABLES, message_context

    assert "postpone_url" in VARIABLES
    context = message_context(request_row(request_id), shop_name="Shop", base_url="https://r.example")
    assert context["postpone_url"] == f"https://r.example/r/{request_row(request_id).token}/postpone"


# -- the campaign form -----------------------------------------------------------------------


def test_the_campaign_form_edits_the_customers_page(logged_in, form_post, client, clock):
    from app.campaigns.models import Campaign
    from tests.factories import campaign

    created = campaign(clock, name="Page texts")
    url = f"/campaigns/{created.id}"
    page = logged_in.get(url).get_data(as_text=True)
    fields = dict(re.findall(r'name="([a-z_0-9]+)"[^>]*value="([^"]*)"', page))
    fields.update(
        {
            "prompt_heading": "How is it?",
            "prompt_question_1": "Why this one?",
            "prompt_question_3": "Tips?",
            "consent_text": "You may use it.",
            "thank_you_text": "Code: HI",
            "reminder_enabled": "y",
            "channel": "email",
            "trigger": "delivered",
        }
    )
    for select_name in re.findall(r'<select[^>]*name="([a-z_0-9]+)"', page):
        fields.setdefault(
            select_name, re.search(rf'name="{select_name}".*?<option[^>]*value="([^"]*)"', page, re.S).group(1)
        )
    fields.pop("csrf_token", None)
    response = form_post(url, data=fields)
    assert response.status_code in (200, 302, 303), response.get_data(as_text=True)[:2000]
    db.session.expire_all()
    saved = db.session.get(Campaign, created.id)
    assert (saved.prompt_heading, saved.prompt_questions, saved.consent_text, saved.thank_you_text) == (
        "How is it?",
        ["Why this one?", "Tips?"],
        "You may use it.",
        "Code: HI",
    )
    assert 'value="Why this one?"' in logged_in.get(url).get_data(as_text=True)
