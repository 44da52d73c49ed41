"""Step 6 and step 8: the customer's link /r/<token> — opening it is recorded once, a video
or a written testimonial with consent is stored (under our own name), and a submission
stops reminders. Unknown links are 404 pages; expired or cancelled ones 410 pages."""

import io
import os
import re

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from app.extensions import db
from app.testimonials.models import Testimonial
from tests.factories import (
    create_request,
    csrf_token_for,
    event_types,
    events_of,
    order_body,
    post_order,
    request_row,
    row_counts,
    sent_request,
    submit_testimonial,
    tick,
)

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free" + b"\x00" * 200
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04" + b"\x00" * 200
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 200


def upload(data, filename="clip.mp4", content_type="video/mp4"):
    return (io.BytesIO(data), filename, content_type)


def stored_files(app):
    """Every stored file, as its storage key (``videos/….mp4``)."""
    folder = app.config["UPLOAD_DIR"]
    return sorted(
        os.path.relpath(os.path.join(top, name), folder).replace(os.sep, "/")
        for top, _, names in os.walk(folder)
        for name in names
    )


def stored_testimonials():
    db.session.expire_all()
    return db.session.scalars(select(Testimonial)).all()


@pytest.fixture
def request_id(client, clock):
    return sent_request(client, clock, reminder_delay_days=4)


@pytest.fixture
def token(request_id):
    return request_row(request_id).token


# -- opening the link ----------------------------------------------------------------------


def test_opening_the_link_records_clicked_once_and_shows_the_product(client, clock, request_id, token):
    clock.advance(hours=2)
    first_open = clock()

    page = client.get(f"/r/{token}")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Hi Ada" in html and "Blue mug" in html and 'name="viewport"' in html
    req = request_row(request_id)
    assert (req.status, req.clicked_at) == ("clicked", first_open)
    clock.advance(hours=5)
    assert client.get(f"/r/{token}").status_code == 200
    assert request_row(request_id).clicked_at == first_open
    assert event_types(request_id).count("clicked") == 1
    assert events_of(request_id, "clicked")[0].occurred_at == first_open


def test_a_head_request_is_not_a_click(client, request_id, token):
    """Link checkers and mail scanners probe with HEAD; only an opened page is a click."""
    before = row_counts()
    assert client.head(f"/r/{token}").status_code == 200
    assert row_counts() == before
    req = request_row(request_id)
    assert (req.status, req.clicked_at) == ("sent", None)
    assert client.get(f"/r/{token}").status_code == 200
    assert request_row(request_id).status == "clicked"


def test_opening_the_link_before_the_message_went_out_records_the_click(client, clock):
    request_id = create_request(client, clock, delay_days=3)
    client.get(f"/r/{request_row(request_id).token}")
    req = request_row(request_id)
    assert req.clicked_at == clock() and req.status == "scheduled"  # sending still to come
    clock.advance(days=3)
    tick(clock)
    assert request_row(request_id).status == "clicked"


@pytest.mark.parametrize("bad_token", ["not-a-token", "x" * 65, "'; DROP TABLE testimonial_requests; --"])
def test_an_unknown_link_is_a_404_page(client, request_id, bad_token):
    response = client.get(f"/r/{bad_token}")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "This link is not valid" in response.get_data(as_text=True)
    before = row_counts()
    assert submit_testimonial(client, bad_token, csrf=csrf_token_for(client, "/login")).status_code == 404
    assert row_counts() == before


def test_a_path_outside_the_link_is_not_found(client, request_id):
    assert client.get("/r/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_an_expired_link_is_a_410_page(client, clock, request_id, token):
    clock.advance(days=31)
    tick(clock)
    assert request_row(request_id).status == "expired"
    response = client.get(f"/r/{token}")
    assert response.status_code == 410 and response.mimetype == "text/html"
    before = row_counts()
    assert submit_testimonial(client, token, csrf=csrf_token_for(client, "/login")).status_code == 410
    assert row_counts() == before
    assert request_row(request_id).clicked_at is None


def test_a_cancelled_link_is_a_410_page(client, clock, request_id, token):
    post_order(client, order_body("evt_cancel", event_type="order.cancelled", items=[]))
    assert client.get(f"/r/{token}").status_code == 410
    assert submit_testimonial(client, token, csrf=csrf_token_for(client, "/login")).status_code == 410
    assert stored_testimonials() == []


# -- submitting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "extension"),
    [
        (MP4, "video/mp4", "mp4"),
        (WEBM, "video/webm", "webm"),
        (MOV, "video/quicktime", "mov"),
    ],
    ids=["mp4", "webm", "quicktime"],
)
def test_a_video_is_stored_under_our_own_name(
    app, client, clock, request_id, token, data, content_type, extension, tmp_path
):
    response = submit_testimonial(client, token, text="", video=upload(data, "../../../evil.mp4", content_type))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Thank you" in response.get_data(as_text=True)
    [name] = stored_files(app)
    assert re.fullmatch(rf"videos/[0-9a-f]{{32}}\.{extension}", name)
    with open(os.path.join(app.config["UPLOAD_DIR"], name), "rb") as f:
        assert f.read() == data
    assert not any("evil" in f for _, _, files in os.walk(tmp_path) for f in files)
    [saved] = stored_testimonials()
    assert (saved.request_id, saved.video_key, saved.video_content_type, saved.video_size, saved.consent) == (
        request_id,
        name,
        content_type,
        len(data),
        True,
    )
    assert saved.text is None
    req = request_row(request_id)
    assert (req.status, req.submitted_at, req.next_send_at) == ("submitted", clock(), None)
    assert event_types(request_id)[-1] == "submitted"


def test_a_written_testimonial_with_consent_is_stored(app, client, clock, request_id, token):
    response = submit_testimonial(client, token, text="  The mug keeps my tea warm.  ")
    assert response.status_code == 200
    [saved] = stored_testimonials()
    assert (saved.text, saved.video_filename, saved.consent) == ("The mug keeps my tea warm.", None, True)
    assert stored_files(app) == []


def test_a_video_and_text_together(app, client, token):
    assert submit_testimonial(client, token, text="Look!", video=upload(MP4)).status_code == 200
    [saved] = stored_testimonials()
    assert saved.text == "Look!" and saved.video_filename.endswith(".mp4")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"text": "Great", "consent": None}, "tick the box"),
        ({"text": "", "consent": "yes"}, "record or choose a video"),
        ({"text": "x" * 5001, "consent": "yes"}, "under 5000 characters"),
        ({"text": "", "video": upload(PNG, "clip.mp4", "video/mp4")}, "must be an MP4, WebM or QuickTime"),
        ({"text": "", "video": upload(MP4, "clip.png", "image/png")}, "must be an MP4, WebM or QuickTime"),
        ({"text": "", "video": upload(b"hello", "clip.mp4", "video/mp4")}, "must be an MP4, WebM or QuickTime"),
        ({"text": "", "video": upload(b"", "clip.mp4", "video/mp4")}, "must be an MP4, WebM or QuickTime"),
    ],
    ids=["no-consent", "nothing", "text-too-long", "png-named-mp4", "mp4-sent-as-png", "text-file", "empty-file"],
)
def test_a_refused_submission_is_a_400_and_stores_nothing(app, client, request_id, token, form, message):
    csrf = csrf_token_for(client, f"/r/{token}")
    before = row_counts()

    response = submit_testimonial(client, token, csrf=csrf, **form)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert row_counts() == before
    assert stored_files(app) == []
    assert request_row(request_id).status == "clicked"


def test_a_submission_without_the_form_token_is_refused(app, client, request_id, token):
    before = row_counts()
    response = client.post(f"/r/{token}", data={"text": "hi", "consent": "yes"})
    assert response.status_code == 400
    assert row_counts() == before


def form_on(page):
    """(textarea text, consent ticked, csrf token) of the form on a record page."""
    html = page.get_data(as_text=True)
    text = re.search(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', html).group(1)
    consent = re.search(r'<input[^>]*name="consent"[^>]*>', html).group(0)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    return text, " checked" in consent, csrf


@pytest.mark.parametrize(
    ("form", "kept", "message"),
    [
        ({"text": "Great mug &amp; lid", "consent": None}, ("Great mug &amp;amp; lid", False), "tick the box"),
        (
            {"text": "Great mug", "video": upload(PNG, "photo.png", "image/png")},
            ("Great mug", True),
            "Please choose your video again.",
        ),
    ],
    ids=["no-consent", "not-a-video"],
)
def test_a_refused_submission_gives_the_customer_back_what_they_wrote(client, request_id, token, form, kept, message):
    response = submit_testimonial(client, token, **form)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert form_on(response)[:2] == kept


def test_an_expired_form_session_is_the_page_again_with_a_fresh_form_not_a_bare_400(app, client, request_id, token):
    """The session cookie behind the form token was lost (a mobile browser that dropped the
    tab while the camera was open): the customer gets the page back, what they wrote kept,
    and sending it again works."""
    # A well-signed token for a session this browser no longer has.
    stale_token = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps("0" * 40)
    before = row_counts()

    response = submit_testimonial(client, token, csrf=stale_token, text="Love it", video=upload(MP4))

    assert response.status_code == 400 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "This page had expired, so nothing was sent" in page and "choose your video once more" in page
    assert "CSRF" not in page
    assert row_counts() == before and stored_files(app) == []
    text, consent, fresh_token = form_on(response)
    assert (text, consent) == ("Love it", True)

    assert submit_testimonial(client, token, csrf=fresh_token, text=text).status_code == 200
    assert request_row(request_id).status == "submitted"


def test_a_second_submission_says_already_received(app, client, request_id, token):
    csrf = csrf_token_for(client, f"/r/{token}")
    assert submit_testimonial(client, token, csrf=csrf, text="First").status_code == 200

    again = submit_testimonial(client, token, csrf=csrf, text="Second", video=upload(MP4))

    assert again.status_code == 409
    assert "already received" in again.get_data(as_text=True)
    assert [t.text for t in stored_testimonials()] == ["First"]
    assert stored_files(app) == []
    page = client.get(f"/r/{token}")
    assert page.status_code == 200 and "already received" in page.get_data(as_text=True)
    assert event_types(request_id).count("submitted") == 1


def test_a_submission_stops_reminders(client, clock, request_id, token):
    assert submit_testimonial(client, token).status_code == 200
    clock.advance(days=40)
    report = tick(clock)
    assert report.messages == 0
    assert request_row(request_id).status == "submitted"


# -- the size limit ----------------------------------------------------------------------------


@pytest.fixture
def small_limit_app(app_factory, clock):
    """An app whose videos may be at most 1 MB, with one request sent."""
    small = app_factory(VIDEO_MAX_MB=1)
    with small.app_context():
        client = small.test_client()
        request_id = sent_request(client, clock)
        yield small, client, request_row(request_id).token, request_id


@pytest.mark.parametrize(
    "size",
    [1024 * 1024 + 1, 1024 * 1024 + 60 * 1024, 3 * 1024 * 1024],
    ids=["one-byte-over", "just-under-the-form-allowance", "far-over"],
)
def test_a_video_over_video_max_mb_is_413_and_stores_nothing(small_limit_app, size):
    small, client, token, request_id = small_limit_app
    csrf = csrf_token_for(client, f"/r/{token}")
    before = row_counts()

    response = submit_testimonial(client, token, csrf=csrf, text="", video=upload(MP4 + b"\x00" * (size - len(MP4))))

    assert response.status_code == 413
    assert "larger than 1 MB" in response.get_data(as_text=True)
    assert row_counts() == before
    assert stored_files(small) == []
    assert request_row(request_id).status == "clicked"


def test_a_video_of_exactly_video_max_mb_is_accepted(small_limit_app):
    small, client, token, request_id = small_limit_app
    data = MP4 + b"\x00" * (1024 * 1024 - len(MP4))
    assert submit_testimonial(client, token, text="", video=upload(data)).status_code == 200
    [name] = stored_files(small)
    assert os.path.getsize(os.path.join(small.config["UPLOAD_DIR"], name)) == 1024 * 1024
