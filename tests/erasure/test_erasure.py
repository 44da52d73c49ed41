"""Erasure on request and withdrawal by the customer: afterwards no row of any table and
no stored file holds the contact's email, phone or name; the overview's totals are what
they were; a later order from the contact is skipped unless the merchant lifts it; a
withdrawn or erased testimonial is gone from every public view and its media 404."""

import io
import os

import boto3
import pytest
from sqlalchemy import String, Text, select, text

from app.clock import now
from app.extensions import db
from app.monitoring import metrics
from app.monitoring.rollup import drift
from app.optouts.models import ContactErasure
from app.storage import get_storage
from app.testimonials.models import Testimonial
from app.testimonials.moderation import apply_action
from tests.conftest import csrf_from
from tests.factories import item, order_body, post_order, tick
from tests.s3_server import s3_bucket, s3_server  # noqa: F401  (fixtures)
from tests.showcase_helpers import active_campaign, make_testimonial

ADA = {
    "email": "ada.lovelace@example.com",
    "phone": "+15557654321",
    "first_name": "Augusta",
    "last_name": "Byronsdottir",
}
POSTER = b"\xff\xd8\xff\xe0" + b"jpeg" * 40


@pytest.fixture
def site(app, client, clock):
    """Ada has two orders (one testimonial with a video and a poster, one request still
    open after its first message) and an opt-out; Grace has a testimonial too."""
    active_campaign(clock)
    ada = make_testimonial(client, clock, 1, customer=ADA, text="Augusta loves it")
    grace = make_testimonial(client, clock, 2)
    body = order_body("evt_ada_2", order_id="order-ada-2", items=[item("li_9", "p_9")], customer=ADA)
    assert post_order(client, body).status_code == 202
    tick(clock)  # the open request's first message goes to the outbox
    get_storage().save("posters/ada.jpg", io.BytesIO(POSTER), "image/jpeg")
    t = db.session.get(Testimonial, ada.id)
    t.poster_key = "posters/ada.jpg"
    db.session.commit()
    apply_action("approve", [ada.id, grace.id], now())
    db.session.commit()
    return ada, grace


def every_text(app):
    """Every text value of every table, and every stored file's name and bytes."""
    values = []
    for table in db.metadata.sorted_tables:
        columns = [c.name for c in table.columns if isinstance(c.type, String | Text)]
        if not columns:
            continue
        quoted = ", ".join(f'"{c}"' for c in columns)
        for row in db.session.execute(text(f'SELECT {quoted} FROM "{table.name}"')):
            values += [f"{table.name}: {v}" for v in row if v]
    folder = app.config["UPLOAD_DIR"]
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                values.append(f"file {name}: {f.read().decode('latin-1')}")
    return values


def leaks(app, *words):
    found = [v for v in every_text(app) for w in words if w.lower() in v.lower()]
    db.session.rollback()  # every transaction holds SQLite's write lock: let the app in
    return found


def overview_totals(clock):
    period = metrics.parse_period({}, clock())
    figures = metrics.period_metrics(period, None)
    db.session.rollback()
    return {k: v for k, v in vars(figures).items() if isinstance(v, int | float)}


def test_erasure_leaves_no_trace_keeps_the_totals_and_blocks_a_later_order(app, client, clock, site, runner):
    ada, grace = site
    assert leaks(app, ADA["email"], ADA["phone"], ADA["first_name"], ADA["last_name"])  # they are there first
    files_before = get_storage().list("videos")
    db.session.rollback()
    before = overview_totals(clock)
    result = runner.invoke(args=["customers", "erase", ADA["email"], "--yes", "--json"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert leaks(app, ADA["email"], ADA["phone"], ADA["first_name"], ADA["last_name"]) == []
    assert len(get_storage().list("videos")) == len(files_before) - 1  # Grace's video stays
    assert not get_storage().exists("posters/ada.jpg")
    assert overview_totals(clock) == before and drift() == []
    [email_row, phone_row] = db.session.scalars(select(ContactErasure).order_by(ContactErasure.channel)).all()
    assert (email_row.channel, phone_row.channel) == ("email", "sms") and email_row.erased_by == "cli"
    assert len(email_row.contact_hash) == 64
    # Gone from every public view; Grace is still there.
    feed = client.get("/api/testimonials").get_json()["testimonials"]
    assert [t["id"] for t in feed] == [grace.public_id]
    assert client.get(f"/t/{ada.public_id}").status_code == 404
    assert client.get(f"/media/{ada.public_id}/video").status_code == 404
    assert ada.public_id not in client.get("/embed/wall").get_data(as_text=True)
    # A later order from Ada (by phone alone, even) is skipped with the reason, and not kept.
    later = order_body(
        "evt_ada_3",
        order_id="order-ada-3",
        items=[item("li_7", "p_7")],
        customer={"phone": ADA["phone"], "first_name": "A"},
    )
    answer = post_order(client, later).get_json()
    assert answer["created"] == [] and "erased on request" in answer["skipped"][0]["reason"]
    db.session.expire_all()
    assert leaks(app, ADA["phone"]) == []
    # Lifted: orders are taken again.
    assert runner.invoke(args=["customers", "lift", ADA["email"]]).exit_code == 0
    again = order_body(
        "evt_ada_4", order_id="order-ada-4", items=[item("li_8", "p_8")], customer={"email": ADA["email"]}
    )
    assert len(post_order(client, again).get_json()["created"]) == 1


def test_an_erased_customers_later_order_is_not_kept_when_no_campaign_would_ask_either(
    app, client, clock, site, runner
):
    """With no active campaign the order is skipped for that reason, and its body, which
    names the customer, is not kept either (it was, before: only a campaign's check
    looked at the erasure list)."""
    assert runner.invoke(args=["customers", "erase", ADA["email"], "--yes"]).exit_code == 0
    [campaign_id] = db.session.scalars(text("SELECT id FROM campaigns")).all()
    db.session.rollback()
    assert runner.invoke(args=["campaigns", "pause", str(campaign_id)]).exit_code == 0
    later = order_body(
        "evt_ada_5", order_id="order-ada-5", items=[item("li_6", "p_6")], customer={"email": ADA["email"]}
    )
    answer = post_order(client, later).get_json()
    assert answer["created"] == [] and "no active campaign" in answer["skipped"][0]["reason"]
    db.session.expire_all()
    assert leaks(app, ADA["email"]) == []


def test_dashboard_erasure_names_what_goes_and_needs_the_confirmation(app, client, clock, site, logged_in):
    ada, _grace = site
    page = logged_in.get(f"/customers/erase?request={ada.request_id}").get_data(as_text=True)
    assert (
        "2 requests" in page
        and "1 testimonial and 2 stored files" in page
        and "stored file" in page
        and "outbox message" in page
    )
    token = csrf_from(client, "/customers/erase")
    refused = client.post("/customers/erase", data={"csrf_token": token, "contact": ADA["email"]})
    assert refused.status_code == 400
    assert db.session.scalar(select(ContactErasure.id)) is None
    done = client.post("/customers/erase", data={"csrf_token": token, "contact": ADA["email"], "confirmed": "yes"})
    assert done.status_code == 303
    db.session.expire_all()
    assert leaks(app, ADA["email"], ADA["first_name"]) == []
    assert db.session.scalar(select(ContactErasure.erased_by).limit(1)) == "merchant@shop.example"
    assert client.get("/customers/erase?contact=not-a-contact").status_code == 400


def test_the_customer_withdraws_after_submitting(app, client, clock, site, logged_in):
    ada, _grace = site
    t = db.session.get(Testimonial, ada.id)
    token, video_key = t.request.token, t.video_key
    db.session.rollback()
    page = client.get(f"/r/{token}").get_data(as_text=True)
    assert "Withdraw my testimonial" in page
    csrf = csrf_from(client, f"/r/{token}")
    assert client.post(f"/r/{token}/withdraw", data={"csrf_token": csrf}).status_code == 400  # not confirmed
    response = client.post(f"/r/{token}/withdraw", data={"csrf_token": csrf, "confirm": "yes"})
    assert response.status_code == 200 and "was withdrawn" in response.get_data(as_text=True)
    db.session.expire_all()
    t = db.session.get(Testimonial, ada.id)
    assert t.status == "withdrawn" and t.withdrawn_at is not None and t.text is None
    assert not get_storage().exists(video_key) and not get_storage().exists("posters/ada.jpg")
    db.session.rollback()
    assert client.get(f"/media/{ada.public_id}/video").status_code == 404
    assert client.get(f"/t/{ada.public_id}").status_code == 404
    assert ada.public_id not in client.get("/api/testimonials").get_data(as_text=True)
    screen = logged_in.get("/testimonials/?status=withdrawn").get_data(as_text=True)
    assert "withdrawn by the customer" in screen
    # The merchant cannot approve it back.
    token = csrf_from(client, "/testimonials/")
    client.post(f"/testimonials/{ada.id}/approve", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Testimonial, ada.id).status == "withdrawn"


def test_erasure_deletes_the_files_from_s3_storage_too(app_factory, clock, s3_server, s3_bucket):  # noqa: F811
    """The same erasure with the videos on an S3-compatible bucket (a local moto server)."""
    s3_app = app_factory(VIDEO_STORAGE_URL=f"s3://{s3_bucket}/shop", S3_ENDPOINT_URL=s3_server)
    with s3_app.app_context():
        client = s3_app.test_client()
        active_campaign(clock)
        ada = make_testimonial(client, clock, 1, customer=ADA)
        apply_action("approve", [ada.id], now())
        db.session.commit()
        media = client.get(f"/media/{ada.public_id}/video")
        assert media.status_code in (302, 303, 307) and s3_server in media.headers["Location"]
        bucket = boto3.client("s3", endpoint_url=s3_server)
        assert bucket.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 1
        result = s3_app.test_cli_runner().invoke(args=["customers", "erase", ADA["phone"], "--yes"])
        assert result.exit_code == 0, result.output
        assert bucket.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
        assert client.get(f"/media/{ada.public_id}/video").status_code == 404
