"""Step 1: POST /webhooks/orders — answers, ids, times, replays, races, signatures, limits,
cancellations, and a table of bad inputs that are all refused with nothing written."""

import copy
import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.intake.models import OrderEvent, OrderEventItem
from app.lifecycle.models import TestimonialRequest
from tests.factories import (
    all_requests,
    campaign,
    item,
    order_body,
    post_order,
    request_row,
    row_counts,
    sign,
    submit_testimonial,
    tick,
)


def utc(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# -- the answer -----------------------------------------------------------------------


def test_accepted_order_answers_202_with_created_ids_and_skips_with_reasons(client, clock):
    campaign(clock, delay_days=3, exclude_products=["p_gift"])
    body = order_body(
        items=[
            item("li_1", "p_1"),
            item("li_2", "p_2", delivered=False),
            item("li_3", "p_gift"),
        ]
    )

    response = post_order(client, body)

    assert response.status_code == 202
    answer = response.get_json()
    assert answer["status"] == "accepted"
    assert answer["duplicate"] is False
    assert answer["event_id"] == "evt_1" and answer["order_id"] == "1001"
    [request_id] = answer["created"]
    assert request_row(request_id).item_id == "li_1"
    assert {s["item_id"]: s["reason"] for s in answer["skipped"]} == {
        "li_2": "item not delivered yet",
        "li_3": "product excluded by the campaign",
    }


def test_order_with_no_active_campaign_is_accepted_and_every_item_skipped_with_the_reason(client):
    response = post_order(client, order_body())
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["created"] == []
    assert answer["skipped"] == [
        {
            "item_id": "li_1",
            "product_id": "p_1",
            "campaign_id": None,
            "reason": "no active campaign with trigger 'delivered'",
        }
    ]
    assert row_counts()["order_events"] == 1  # kept, so "why nothing?" has an answer


@pytest.mark.parametrize(
    ("order_id", "item_id", "product_id"),
    [
        ("1001", "li_1", "p_1"),
        (1001, 77, 5),
    ],
    ids=["string ids", "integer ids"],
)
def test_order_item_and_product_ids_may_be_strings_or_integers(client, clock, order_id, item_id, product_id):
    campaign(clock)
    body = order_body(order_id=order_id, items=[item(item_id, product_id)])
    body["event_id"] = 42 if isinstance(order_id, int) else "evt_42"

    response = post_order(client, body)

    assert response.status_code == 202, response.get_json()
    req = request_row(response.get_json()["created"][0])
    assert (req.order_id, req.item_id, req.product_id) == (str(order_id), str(item_id), str(product_id))
    # The integer event id is the same event as its string form.
    replay = copy.deepcopy(body)
    replay["event_id"] = str(body["event_id"])
    assert post_order(client, replay).get_json()["duplicate"] is True


# -- the initial send time ------------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "delay_days", "expected_due"),
    [
        ("2026-11-19T08:30:00Z", 3, "2026-11-22T08:30:00Z"),  # past event, send still ahead
        ("2026-11-25T10:00:00Z", 2, "2026-11-27T10:00:00Z"),  # event in the future (skew, back-fill)
        ("2026-11-20T12:00:00Z", 0, "2026-11-20T12:00:00Z"),  # no delay: due now
        ("2026-11-01T09:00:00Z", 3, "2026-11-20T12:00:00Z"),  # already past: due at the next tick
        ("2026-11-19T23:30:00-05:00", 1, "2026-11-21T04:30:00Z"),  # offset converted to UTC
        ("2026-11-20T01:15:00+09:00", 3, "2026-11-22T16:15:00Z"),
    ],
    ids=["past", "future", "no-delay", "already-past-is-due-now", "negative-offset", "positive-offset"],
)
def test_initial_send_time_is_occurred_at_plus_delay_days_in_utc(client, clock, occurred_at, delay_days, expected_due):
    campaign(clock, delay_days=delay_days)  # clock: 2026-11-20T12:00:00Z

    response = post_order(client, order_body(occurred_at=occurred_at))

    req = request_row(response.get_json()["created"][0])
    assert req.next_send_at == utc(expected_due)
    assert req.trigger_at == utc(occurred_at)
    assert req.status == "scheduled" and req.next_slot == 0


def test_an_overdue_request_is_sent_at_the_next_tick(client, clock):
    campaign(clock, delay_days=3)
    post_order(client, order_body(occurred_at="2026-10-01T00:00:00Z"))
    assert tick(clock).sent == 1


def test_request_token_is_long_random_and_url_safe(client, clock):
    campaign(clock)
    body = order_body(items=[item("li_1", "p_1"), item("li_2", "p_2")])
    tokens = [request_row(i).token for i in post_order(client, body).get_json()["created"]]
    assert len(set(tokens)) == 2
    for token in tokens:
        assert len(token) >= 22  # ≥ 128 bits in base64url
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# -- replays --------------------------------------------------------------------------


def test_replay_of_a_known_event_id_answers_200_duplicate_and_writes_nothing(client, clock):
    campaign(clock)
    first = post_order(client, order_body())
    before = row_counts()

    replay = post_order(client, order_body())

    assert replay.status_code == 200
    answer = replay.get_json()
    assert answer["duplicate"] is True
    assert answer["created"] == first.get_json()["created"]  # what the event did the first time
    assert row_counts() == before


def test_replay_with_a_different_body_under_the_same_event_id_changes_nothing(client, clock):
    campaign(clock)
    post_order(client, order_body())
    before = row_counts()
    replay = post_order(client, order_body(items=[item("li_9", "p_9")]))
    assert replay.status_code == 200 and replay.get_json()["duplicate"] is True
    assert row_counts() == before


@pytest.mark.parametrize(
    "changed",
    [
        {"order_id": "1002"},
        {"event_type": "order.cancelled"},
    ],
    ids=["another-order", "another-event-type"],
)
def test_an_event_id_reused_for_another_event_is_409_and_writes_nothing(client, clock, changed):
    """A sender that recycles ids (or copies "evt_1" from the README) must hear that its
    second event was not applied, not a 200 "duplicate" that reads like success."""
    campaign(clock)
    [request_id] = post_order(client, order_body("evt_1")).get_json()["created"]
    before = row_counts()

    response = post_order(client, order_body("evt_1", **changed))

    assert response.status_code == 409
    answer = response.get_json()
    assert answer["field"] == "event_id"
    assert "'evt_1' was already used" in answer["error"] and "order 1001" in answer["error"]
    assert row_counts() == before
    assert request_row(request_id).status == "scheduled"


def test_same_order_and_item_under_a_new_event_id_makes_no_second_request(client, clock):
    created = campaign(clock)
    [request_id] = post_order(client, order_body("evt_1")).get_json()["created"]

    again = post_order(client, order_body("evt_2", event_type="order.delivered"))

    assert again.status_code == 202
    answer = again.get_json()
    assert answer["duplicate"] is False and answer["created"] == []
    [skip] = answer["skipped"]
    assert skip["item_id"] == "li_1"
    assert skip["reason"].startswith(f"already requested by campaign {created.id}")
    assert [r.id for r in all_requests()] == [request_id]


def test_fulfilled_then_delivered_for_the_same_item_still_makes_one_request(client, clock):
    campaign(clock, name="Fulfilled", trigger="fulfilled")
    campaign(clock, name="Delivered", trigger="delivered")
    post_order(client, order_body("evt_f", event_type="order.fulfilled"))
    second = post_order(client, order_body("evt_d", event_type="order.delivered")).get_json()
    assert second["created"] == []
    assert second["skipped"][0]["reason"].startswith("already requested by campaign 1")
    assert len(all_requests()) == 1


def _race(app_factory, bodies):
    """Post each body from its own app instance (own engine, own connections) at once."""
    apps = [app_factory() for _ in bodies]
    barrier = threading.Barrier(len(bodies))
    answers = [None] * len(bodies)

    def deliver(index):
        client = apps[index].test_client()
        barrier.wait()
        response = post_order(client, bodies[index])
        answers[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers), answers
    return answers


def test_two_deliveries_of_the_same_event_racing_make_exactly_one_request(app, app_factory, clock):
    campaign(clock)

    answers = _race(app_factory, [order_body("evt_race"), order_body("evt_race")])

    assert sorted(status for status, _ in answers) == [200, 202]
    assert sorted(a["duplicate"] for _, a in answers) == [False, True]
    assert len(all_requests()) == 1
    assert row_counts()["order_events"] == 1


def test_racing_deliveries_of_the_same_order_under_different_event_ids_make_exactly_one_request(
    app, app_factory, clock
):
    campaign(clock)

    answers = _race(app_factory, [order_body(f"evt_{i}") for i in range(4)])

    assert [status for status, _ in answers] == [202] * 4
    assert sum(len(a["created"]) for _, a in answers) == 1
    assert len(all_requests()) == 1
    assert row_counts()["order_events"] == 4  # every delivery is kept with its outcome


# -- one short transaction -------------------------------------------------------------


def _statements(app, post):
    """The SQL statements the app's engine runs while ``post()`` runs."""
    from sqlalchemy import event

    from app.extensions import db

    seen = []

    def record(_conn, _cursor, statement, _params, _context, _many):
        seen.append(" ".join(statement.split()[:3]))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = post()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return response, seen


@pytest.mark.parametrize("products", [2, 40])
def test_a_new_order_is_a_fixed_handful_of_statements_in_one_transaction(app, client, clock, products):
    campaign(clock)
    campaign(clock, name="Second campaign", include_products=["p_0"])
    post_order(client, order_body("evt_warm", order_id="900", customer={"email": "warm@example.com"}))
    body = order_body("evt_many", order_id="901", items=[item(f"li_{n}", f"p_{n}") for n in range(products)])

    response, statements = _statements(app, lambda: post_order(client, body))

    assert response.status_code == 202
    assert len(response.get_json()["created"]) == products
    # Each item: created by the oldest campaign, and a row saying the second was too late.
    assert len(row_counts_of_event("evt_many")) == 2 * products
    # Decided in a read-only transaction (SQLite: a plain BEGIN, no write lock): the
    # snapshot (event id seen, the campaigns' fingerprint…), cancellations, earlier
    # requests, opt-outs. Written in the one write transaction: one INSERT each for the
    # event (which checks the snapshot in the same statement), its requests and its
    # items, whatever the size, in the savepoint that keeps them apart from other
    # webhooks' writes sharing the transaction (app/group_commit.py).
    assert statements.count("BEGIN") == 1 and statements.count("BEGIN IMMEDIATE") == 1, statements
    read = statements[: statements.index("BEGIN IMMEDIATE")]
    write = statements[statements.index("BEGIN IMMEDIATE") + 1 :]
    assert read[0] == "BEGIN" and len(read) == 5 and all(s.startswith("SELECT") for s in read[1:]), read
    assert write == [
        "SAVEPOINT together",
        "INSERT INTO order_events",
        "INSERT INTO testimonial_requests",
        "INSERT INTO order_event_items",
        "RELEASE SAVEPOINT together",
    ], write


def test_a_change_between_the_read_and_the_write_is_decided_again_under_the_lock(
    app, app_factory, client, clock, monkeypatch
):
    """The plan made outside the lock is used only if what it was decided from still
    holds: here another process opts the customer out in between."""
    import app.intake.services as intake
    from app.clock import now
    from app.optouts.services import suppress

    campaign(clock, channel="email")
    other = app_factory()
    original = intake.read_ahead

    def read_then_opt_out(*args, **kwargs):
        plan = original(*args, **kwargs)
        with other.app_context():
            suppress("email", "ada@example.com", now(), source="link", detail="between the read and the write")
            db.session.commit()
        return plan

    monkeypatch.setattr(intake, "read_ahead", read_then_opt_out)  # the real one, then the other process
    response, statements = _statements(app, lambda: post_order(client, order_body()))

    answer = response.get_json()
    assert answer["created"] == [] and answer["skipped"][0]["reason"] == "opted out", answer
    if db.engine.dialect.name == "sqlite":  # the write transaction begins by taking the lock
        statements = statements[statements.index("BEGIN IMMEDIATE") + 1 :]
    assert "SELECT order_events.id, order_events.source," in statements  # decided again, in the transaction


def row_counts_of_event(event_id):
    record = OrderEvent.query.filter_by(event_id=event_id).one()
    return OrderEventItem.query.filter_by(order_event_id=record.id).all()


def test_a_campaign_changed_by_another_process_applies_to_the_next_webhook(app, app_factory, clock):
    """The intake keeps the active campaigns' rules in memory; a change anywhere (here: a
    second app, as another gunicorn worker would be) is seen at the next webhook."""
    from app.campaign_admin.services import set_status, update_campaign
    from app.campaigns.models import Campaign
    from app.extensions import db

    mugs_id = campaign(clock, exclude_products=["p_2"]).id
    db.session.rollback()  # reading the id began a transaction: end it (SQLite: a lock)
    web = app_factory().test_client()
    assert (
        post_order(web, order_body("evt_a", order_id="a", items=[item("li_2", "p_2")])).get_json()["skipped"][0][
            "reason"
        ]
        == "product excluded by the campaign"
    )

    other = app_factory()
    with other.app_context():
        update_campaign(db.session.get(Campaign, mugs_id), clock(), exclude_products=[])
        db.session.commit()
    answer = post_order(web, order_body("evt_b", order_id="b", items=[item("li_2", "p_2")])).get_json()
    assert len(answer["created"]) == 1

    with other.app_context():
        set_status(db.session.get(Campaign, mugs_id), "pause", clock())
        db.session.commit()
    answer = post_order(web, order_body("evt_c", order_id="c", items=[item("li_2", "p_2")])).get_json()
    assert answer["skipped"][0]["reason"] == "no active campaign with trigger 'delivered'"

    with other.app_context():
        campaign(clock, name="A new one")
    answer = post_order(web, order_body("evt_d", order_id="d", items=[item("li_2", "p_2")])).get_json()
    assert len(answer["created"]) == 1


def test_a_campaign_change_rolled_back_is_not_remembered(app, client, clock):
    """A transaction that edits a campaign and reads the rules, then rolls back, leaves the
    campaign as it was: the next webhook must not use the rolled-back rules."""
    from app.campaigns.models import Campaign
    from app.extensions import db
    from app.intake.active_campaigns import active_campaigns

    mugs = campaign(clock)
    db.session.get(Campaign, mugs.id).exclude_products = ["p_1"]
    db.session.flush()
    assert active_campaigns("delivered")[0].rules.exclude_products == ("p_1",)
    db.session.rollback()

    assert len(post_order(client, order_body()).get_json()["created"]) == 1


def test_the_database_refuses_a_second_request_for_the_same_order_and_product(app, client, clock):
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db

    campaign(clock)
    [request_id] = post_order(client).get_json()["created"]
    original = request_row(request_id)
    twin = TestimonialRequest(
        campaign_id=original.campaign_id,
        order_id=original.order_id,
        item_id="li_other",
        product_id=original.product_id,
        product_title="x",
        channel="email",
        token="another-token",
        status="scheduled",
        trigger_at=clock(),
        next_send_at=clock(),
    )
    db.session.add(twin)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


# -- signatures -----------------------------------------------------------------------

SECRET = "whsec_test_0123456789"


@pytest.fixture
def signed_client(app_factory, clock):
    signed_app = app_factory(ORDER_WEBHOOK_SECRET=SECRET)
    with signed_app.app_context():
        campaign(clock)
    return signed_app.test_client()


def test_valid_signature_is_accepted(app, signed_client):
    raw = json.dumps(order_body()).encode()
    response = post_order(signed_client, raw, headers={"X-Webhook-Signature": sign(SECRET, raw)})
    assert response.status_code == 202, response.get_json()
    assert len(response.get_json()["created"]) == 1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=" + "0" * 64,
        "md5=abc",
        "sign-with-the-wrong-secret",
        "sign-another-body",
        "sha256=" + "é" * 64,  # curl sends UTF-8 bytes; WSGI hands them over as latin-1 text
    ],
    ids=["missing", "empty", "no-hex", "wrong-hex", "wrong-scheme", "wrong-secret", "other-body", "non-ascii"],
)
def test_bad_or_missing_signature_is_401_and_writes_nothing(app, signed_client, header):
    raw = json.dumps(order_body()).encode()
    if header == "sign-with-the-wrong-secret":
        header = sign("not-the-secret", raw)
    elif header == "sign-another-body":
        header = sign(SECRET, raw.replace(b"evt_1", b"evt_2"))
    headers = {} if header is None else {"X-Webhook-Signature": header}
    before = row_counts()

    response = post_order(signed_client, raw, headers=headers)

    assert response.status_code == 401
    assert "X-Webhook-Signature" in response.get_json()["error"]
    assert row_counts() == before


def test_production_config_refuses_to_start_without_the_webhook_secret(app_factory):
    with pytest.raises(RuntimeError, match="ORDER_WEBHOOK_SECRET must be set.*ORDER_WEBHOOK_ENABLED=false"):
        app_factory(PRODUCTION=True, SECRET_KEY="a-long-random-production-secret-key")
    assert app_factory(PRODUCTION=True, SECRET_KEY="a-long-random-production-secret-key", ORDER_WEBHOOK_SECRET=SECRET)


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("   ", "ORDER_WEBHOOK_SECRET must be set"),
        ("short", "ORDER_WEBHOOK_SECRET must be at least 16 characters (got 5)"),
    ],
)
def test_production_refuses_a_blank_or_short_webhook_secret(app_factory, secret, words):
    with pytest.raises(RuntimeError) as refused:
        app_factory(PRODUCTION=True, SECRET_KEY="a-long-random-production-secret-key", ORDER_WEBHOOK_SECRET=secret)
    assert words in str(refused.value)


def test_a_shopify_only_shop_turns_the_order_webhook_off_and_needs_no_secret(app_factory, clock):
    # Failed before the fix: production refused to start without ORDER_WEBHOOK_SECRET even
    # with no use for the generic webhook, and there was no way to turn it off.
    app = app_factory(
        PRODUCTION=True,
        SECRET_KEY="a-long-random-production-secret-key",
        ORDER_WEBHOOK_SECRET=None,
        ORDER_WEBHOOK_ENABLED=False,
    )
    with app.app_context():
        campaign(clock)
        before = row_counts()
        response = post_order(app.test_client(), order_body())
        assert response.status_code == 404
        assert "ORDER_WEBHOOK_ENABLED=false" in response.get_json()["error"]
        assert row_counts() == before


# -- size, type, event type -------------------------------------------------------------


def test_body_over_one_mebibyte_is_413_and_writes_nothing(client, clock):
    campaign(clock)
    body = order_body()
    body["padding"] = "x" * (1024 * 1024)
    before = row_counts()
    response = post_order(client, body)
    assert response.status_code == 413
    assert "error" in response.get_json()
    assert row_counts() == before


def test_body_of_exactly_one_mebibyte_is_read(client, clock):
    campaign(clock)
    raw = json.dumps(order_body()).encode()
    raw = raw[:-1] + b" " * (1024 * 1024 - len(raw)) + b"}"
    assert len(raw) == 1024 * 1024
    assert post_order(client, raw).status_code == 202


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ],
)
def test_body_that_is_not_json_is_415(client, clock, content_type):
    before = row_counts()
    response = post_order(client, json.dumps(order_body()), content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]
    assert row_counts() == before


def test_json_with_a_charset_is_json(client, clock):
    campaign(clock)
    response = post_order(client, order_body(), content_type="application/json; charset=utf-8")
    assert response.status_code == 202


def test_unknown_event_type_is_400_naming_the_allowed_ones(client):
    response = post_order(client, order_body(event_type="order.created"))
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["field"] == "event_type"
    for allowed in ("order.delivered", "order.fulfilled", "order.cancelled", "order.refunded"):
        assert allowed in answer["error"]


def test_get_on_the_webhook_is_405_json(client):
    response = client.get("/webhooks/orders")
    assert response.status_code == 405
    assert "error" in response.get_json()


# -- cancellation and refunds -----------------------------------------------------------


def _two_product_order(client, clock):
    campaign(clock, delay_days=0)
    body = order_body(items=[item("li_1", "p_1"), item("li_2", "p_2")])
    return post_order(client, body).get_json()["created"]


@pytest.mark.parametrize("event_type", ["order.cancelled", "order.refunded"])
def test_cancelled_or_refunded_order_cancels_its_requests_not_yet_submitted(client, clock, event_type):
    first, second = _two_product_order(client, clock)
    tick(clock)
    assert submit_testimonial(client, request_row(first).token).status_code == 200

    response = post_order(client, order_body("evt_stop", event_type=event_type, items=[]))

    assert response.status_code == 202
    assert response.get_json()["cancelled"] == [second]
    assert request_row(first).status == "submitted"  # untouched
    stopped = request_row(second)
    assert stopped.status == "cancelled" and stopped.next_send_at is None
    assert stopped.cancelled_at == clock()
    assert "not cancelled: already submitted" in [s["reason"] for s in response.get_json()["skipped"]]
    clock.advance(days=30)
    report = tick(clock)
    assert report.sent == 0 and report.messages == 0


def test_cancellation_without_items_in_the_body_is_accepted(client, clock):
    campaign(clock)
    [request_id] = post_order(client, order_body()).get_json()["created"]
    body = order_body("evt_c", event_type="order.cancelled")
    del body["order"]["items"]
    assert post_order(client, body).status_code == 202
    assert request_row(request_id).status == "cancelled"


def test_partial_refund_cancels_only_the_refunded_items(client, clock):
    first, second = _two_product_order(client, clock)
    response = post_order(client, order_body("evt_r", event_type="order.refunded", items=[item("li_2", "p_2")]))
    assert response.get_json()["cancelled"] == [second]
    assert request_row(first).status == "scheduled"
    assert request_row(second).status == "cancelled"


def test_a_refund_of_items_never_asked_about_says_so_and_cancels_nothing(client, clock):
    first, second = _two_product_order(client, clock)
    response = post_order(client, order_body("evt_r", event_type="order.refunded", items=[item("li_9", "p_9")]))
    answer = response.get_json()
    assert response.status_code == 202 and answer["cancelled"] == []
    assert [s["reason"] for s in answer["skipped"]] == [
        "no requests for the refunded items (li_9); the order's other requests go on"
    ]
    assert [request_row(r).status for r in (first, second)] == ["scheduled", "scheduled"]


def test_cancelling_an_order_never_seen_is_accepted_and_recorded(client):
    response = post_order(client, order_body("evt_c", order_id="404", event_type="order.cancelled", items=[]))
    assert response.status_code == 202
    assert response.get_json()["skipped"] == [
        {"item_id": None, "product_id": None, "campaign_id": None, "reason": "no requests for this order"}
    ]


def test_cancel_event_replayed_is_a_duplicate(client, clock):
    _two_product_order(client, clock)
    post_order(client, order_body("evt_c", event_type="order.cancelled", items=[]))
    before = row_counts()
    replay = post_order(client, order_body("evt_c", event_type="order.cancelled", items=[]))
    assert replay.status_code == 200 and replay.get_json()["duplicate"] is True
    assert row_counts() == before


# -- cancellations remembered: events count in the order they happened --------------------


def _skipped(answer):
    return {s["item_id"]: s["reason"] for s in answer["skipped"]}


def _intake_log_reasons(event_id):
    record = db.session.scalar(select(OrderEvent).where(OrderEvent.event_id == event_id))
    return {i.item_id: i.reason for i in record.items if i.outcome == "skipped"}


@pytest.mark.parametrize(
    ("event_type", "words"), [("order.cancelled", "order cancelled"), ("order.refunded", "order refunded")]
)
@pytest.mark.parametrize(
    "delivered_at",
    ["2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z"],
    ids=["delivered before", "delivered at the same time"],
)
def test_a_cancellation_received_before_the_delivery_stops_it(
    client, clock, logged_in, event_type, words, delivered_at
):
    # Failed before the fix: the cancel answered "no requests for this order" and the
    # delivery made two requests that were sent at the next tick.
    campaign(clock, delay_days=0)
    post_order(client, order_body("evt_c", event_type=event_type, occurred_at="2026-11-20T13:00:00Z", items=[]))

    response = post_order(
        client, order_body("evt_d", occurred_at=delivered_at, items=[item("li_1", "p_1"), item("li_2", "p_2")])
    )

    assert response.status_code == 202
    answer = response.get_json()
    assert answer["created"] == []
    reason = f"{words} at 2026-11-20T13:00:00Z"
    assert _skipped(answer) == {"li_1": reason, "li_2": reason}
    assert _intake_log_reasons("evt_d") == {"li_1": reason, "li_2": reason}
    assert reason in logged_in.get("/intake/?order_id=1001").get_data(as_text=True)
    assert all_requests() == []
    assert tick(clock).messages == 0


def test_a_delivery_that_happened_after_the_cancellation_stands(client, clock):
    campaign(clock, delay_days=0)
    post_order(client, order_body("evt_c", event_type="order.cancelled", occurred_at="2026-11-20T11:00:00Z", items=[]))
    response = post_order(client, order_body("evt_d", occurred_at="2026-11-20T11:00:01Z"))
    assert len(response.get_json()["created"]) == 1


def test_the_outcome_does_not_depend_on_which_webhook_arrives_first(client, clock):
    """Delivered at 14:00, cancelled at 13:00 (the cancel's webhook late): by the time
    the events happened, the delivery came after the cancellation, so it stands; and
    delivered at 12:00 then cancelled at 13:00 stops it, either way round."""
    campaign(clock, delay_days=0)
    [kept] = post_order(client, order_body("evt_d1", order_id="A", occurred_at="2026-11-20T14:00:00Z")).get_json()[
        "created"
    ]
    answer = post_order(
        client,
        order_body("evt_c1", order_id="A", event_type="order.cancelled", occurred_at="2026-11-20T13:00:00Z", items=[]),
    ).get_json()
    assert answer["cancelled"] == []
    assert _skipped(answer) == {
        "li_1": "not cancelled: delivered at 2026-11-20T14:00:00Z, after this cancelled at 2026-11-20T13:00:00Z"
    }
    assert request_row(kept).status == "scheduled"

    [stopped] = post_order(
        client, order_body("evt_d2", order_id="B", occurred_at="2026-11-20T12:00:00Z", items=[item("li_9", "p_9")])
    ).get_json()["created"]
    post_order(
        client,
        order_body("evt_c2", order_id="B", event_type="order.cancelled", occurred_at="2026-11-20T13:00:00Z", items=[]),
    )
    assert request_row(stopped).status == "cancelled"


def test_an_item_refund_received_before_the_delivery_stops_only_that_item(client, clock):
    campaign(clock, delay_days=0)
    post_order(
        client,
        order_body(
            "evt_r", event_type="order.refunded", occurred_at="2026-11-20T13:00:00Z", items=[item("li_2", "p_2")]
        ),
    )
    response = post_order(client, order_body("evt_d", items=[item("li_1", "p_1"), item("li_2", "p_2")]))
    answer = response.get_json()
    [created] = answer["created"]
    assert request_row(created).item_id == "li_1"
    assert _skipped(answer) == {"li_2": "item refunded at 2026-11-20T13:00:00Z"}


def test_a_cancellation_of_another_order_or_source_stops_nothing(client, clock):
    campaign(clock, delay_days=0)
    post_order(
        client,
        order_body("evt_c", order_id="999", event_type="order.cancelled", occurred_at="2026-11-20T13:00:00Z", items=[]),
    )
    assert len(post_order(client, order_body("evt_d")).get_json()["created"]) == 1


def test_every_webhook_is_kept_with_its_outcome_per_item(client, clock):
    campaign(clock, exclude_tags=["wholesale"])
    body = order_body(items=[item("li_1", "p_1"), item("li_2", "p_1")], tags=["Wholesale"])
    post_order(client, body)
    from app.extensions import db

    event = db.session.scalar(select(OrderEvent))
    assert event.event_type == "order.delivered" and json.loads(event.payload)["order"]["id"] == "1001"
    rows = db.session.scalars(select(OrderEventItem).order_by(OrderEventItem.id)).all()
    assert [(r.item_id, r.outcome) for r in rows] == [("li_1", "skipped"), ("li_2", "skipped")]
    assert rows[0].reason == "customer tag wholesale is excluded"
    assert rows[1].reason == "same product as item li_1 (one request per product)"


# -- a table of bad inputs -------------------------------------------------------------


def body_with(path, value):
    """order_body() with the field at ``path`` (dotted, [i] for list items) set or deleted."""
    body = order_body()
    keys = []
    for part in path.split("."):
        if "[" in part:
            name, index = part[:-1].split("[")
            keys += [name, int(index)]
        else:
            keys.append(part)
    target = body
    for key in keys[:-1]:
        target = target[key]
    if value is DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return body


DELETE = object()
TWO_SAME_ITEMS = order_body(items=[item("li_1", "p_1"), item("li_1", "p_2")])
SAME_ID_INT_AND_STRING = order_body(items=[item(7, "p_1"), item("7", "p_2")])
TOO_MANY_ITEMS = order_body(items=[item(f"li_{i}", f"p_{i}") for i in range(501)])
VALID_JSON = json.dumps(order_body())

# (id, raw body or dict, expected status, expected "field" (None: not a schema error))
BAD_INPUTS = [
    ("malformed-json", b'{"event_id": "evt_1",', 400, None),
    ("empty-body", b"", 400, None),
    ("top-level-array", [order_body()], 400, "body"),
    ("top-level-string", b'"order"', 400, "body"),
    ("top-level-null", b"null", 400, "body"),
    ("top-level-number", b"42", 400, "body"),
    ("empty-object", {}, 400, "event_id"),
    ("event-id-missing", body_with("event_id", DELETE), 400, "event_id"),
    ("event-id-null", body_with("event_id", None), 400, "event_id"),
    ("event-id-boolean", body_with("event_id", True), 400, "event_id"),
    ("event-id-float", body_with("event_id", 1.5), 400, "event_id"),
    ("event-id-object", body_with("event_id", {"id": 1}), 400, "event_id"),
    ("event-id-blank", body_with("event_id", "   "), 400, "event_id"),
    ("event-id-huge-string", body_with("event_id", "e" * 100_000), 400, "event_id"),
    ("event-type-unknown", body_with("event_type", "order.created"), 400, "event_type"),
    ("event-type-number", body_with("event_type", 3), 400, "event_type"),
    ("event-type-list", body_with("event_type", ["order.delivered"]), 400, "event_type"),
    ("occurred-at-missing", body_with("occurred_at", DELETE), 400, "occurred_at"),
    ("occurred-at-no-offset", body_with("occurred_at", "2026-11-20T14:03:00"), 400, "occurred_at"),
    ("occurred-at-not-a-string", body_with("occurred_at", 1_790_000_000), 400, "occurred_at"),
    ("occurred-at-feb-30", body_with("occurred_at", "2026-02-30T10:00:00Z"), 400, "occurred_at"),
    ("occurred-at-date-only", body_with("occurred_at", "2026-11-20"), 400, "occurred_at"),
    ("occurred-at-words", body_with("occurred_at", "yesterday at noon"), 400, "occurred_at"),
    ("occurred-at-hour-25", body_with("occurred_at", "2026-11-20T25:00:00Z"), 400, "occurred_at"),
    ("occurred-at-offset-25h", body_with("occurred_at", "2026-11-20T10:00:00+25:00"), 400, "occurred_at"),
    ("occurred-at-year-9999", body_with("occurred_at", "9999-12-31T23:59:59Z"), 400, "occurred_at"),
    ("occurred-at-year-1", body_with("occurred_at", "0001-01-01T00:00:00+01:00"), 400, "occurred_at"),
    ("order-missing", body_with("order", DELETE), 400, "order"),
    ("order-array", body_with("order", [order_body()["order"]]), 400, "order"),
    ("order-string", body_with("order", "1001"), 400, "order"),
    ("order-id-missing", body_with("order.id", DELETE), 400, "order.id"),
    ("order-id-boolean", body_with("order.id", False), 400, "order.id"),
    ("order-id-object", body_with("order.id", {"id": "1001"}), 400, "order.id"),
    ("order-id-huge-integer", body_with("order.id", 10**80), 400, "order.id"),
    ("total-negative", body_with("order.total", "-5.00"), 400, "order.total"),
    ("total-nan-string", body_with("order.total", "NaN"), 400, "order.total"),
    ("total-nan-literal", VALID_JSON.replace('"59.90"', "NaN").encode(), 400, None),
    ("total-infinity-literal", VALID_JSON.replace('"59.90"', "Infinity").encode(), 400, None),
    ("total-overflowing-float", VALID_JSON.replace('"59.90"', "1e400").encode(), 400, "order.total"),
    ("total-words", body_with("order.total", "fifty"), 400, "order.total"),
    ("total-boolean", body_with("order.total", True), 400, "order.total"),
    ("currency-too-long", body_with("order.currency", "DOLLARS"), 400, "order.currency"),
    ("currency-not-letters", body_with("order.currency", "$$$"), 400, "order.currency"),
    ("currency-two-letters", body_with("order.currency", "US"), 400, "order.currency"),
    ("total-absurd-exponent", body_with("order.total", "1e999"), 400, "order.total"),
    ("total-absurd-integer", body_with("order.total", 10**19), 400, "order.total"),
    ("price-absurd", body_with("order.items[0].price", "1e15"), 400, "order.items[0].price"),
    ("tags-string", body_with("order.tags", "vip"), 400, "order.tags"),
    ("tags-numbers", body_with("order.tags", [1, 2]), 400, "order.tags"),
    ("customer-array", body_with("order.customer", ["ada@example.com"]), 400, "order.customer"),
    ("customer-empty-array", body_with("order.customer", []), 400, "order.customer"),
    ("customer-empty-string", body_with("order.customer", ""), 400, "order.customer"),
    ("customer-false", body_with("order.customer", False), 400, "order.customer"),
    ("tags-empty-string", body_with("order.tags", ""), 400, "order.tags"),
    ("tags-empty-object", body_with("order.tags", {}), 400, "order.tags"),
    ("email-not-an-address", body_with("order.customer.email", "ada at example"), 400, "order.customer.email"),
    ("email-number", body_with("order.customer.email", 12), 400, "order.customer.email"),
    ("phone-huge-string", body_with("order.customer.phone", "+1" * 5000), 400, "order.customer.phone"),
    ("first-name-huge-string", body_with("order.customer.first_name", "A" * 10_000), 400, "order.customer.first_name"),
    ("items-missing", body_with("order.items", DELETE), 400, "order.items"),
    ("items-empty", body_with("order.items", []), 400, "order.items"),
    ("items-object", body_with("order.items", {"id": "li_1"}), 400, "order.items"),
    ("items-too-many", TOO_MANY_ITEMS, 400, "order.items"),
    ("item-string", body_with("order.items[0]", "li_1"), 400, "order.items[0]"),
    ("item-null", body_with("order.items[0]", None), 400, "order.items[0]"),
    ("item-id-missing", body_with("order.items[0].id", DELETE), 400, "order.items[0].id"),
    ("item-id-null", body_with("order.items[0].id", None), 400, "order.items[0].id"),
    ("item-id-boolean", body_with("order.items[0].id", True), 400, "order.items[0].id"),
    ("item-product-id-missing", body_with("order.items[0].product_id", DELETE), 400, "order.items[0].product_id"),
    ("item-product-id-list", body_with("order.items[0].product_id", ["p_1"]), 400, "order.items[0].product_id"),
    ("duplicate-item-ids", TWO_SAME_ITEMS, 400, "order.items[1].id"),
    ("duplicate-item-ids-int-and-string", SAME_ID_INT_AND_STRING, 400, "order.items[1].id"),
    ("quantity-zero", body_with("order.items[0].quantity", 0), 400, "order.items[0].quantity"),
    ("quantity-negative", body_with("order.items[0].quantity", -2), 400, "order.items[0].quantity"),
    ("quantity-string", body_with("order.items[0].quantity", "2"), 400, "order.items[0].quantity"),
    ("quantity-boolean", body_with("order.items[0].quantity", True), 400, "order.items[0].quantity"),
    ("quantity-fraction", body_with("order.items[0].quantity", 1.5), 400, "order.items[0].quantity"),
    ("price-negative", body_with("order.items[0].price", "-19.95"), 400, "order.items[0].price"),
    ("delivered-string", body_with("order.items[0].delivered", "yes"), 400, "order.items[0].delivered"),
    (
        "image-url-javascript",
        body_with("order.items[0].image_url", "javascript:alert(1)"),
        400,
        "order.items[0].image_url",
    ),
    ("title-huge-string", body_with("order.items[0].title", "T" * 100_000), 400, "order.items[0].title"),
    ("non-utf8-bytes", VALID_JSON.replace("Ada", "Ad\udcff").encode("utf-8", "surrogateescape"), 400, None),
    ("utf16-body", VALID_JSON.encode("utf-16"), 400, None),
    ("lone-surrogate-escape", VALID_JSON.replace('"evt_1"', '"evt_\\ud800"').encode(), 400, "event_id"),
    ("deeply-nested-arrays", b"[" * 100_000 + b"]" * 100_000, 400, None),
    ("deeply-nested-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400, None),
    ("trailing-garbage", (VALID_JSON + " trailing").encode(), 400, None),
    ("integer-over-digit-limit", VALID_JSON.replace('"1001"', "1" * 5000).encode(), 400, None),
]


@pytest.mark.parametrize(("raw", "status", "field"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_webhook_input_is_refused_with_a_json_error_and_nothing_written(client, clock, raw, status, field):
    campaign(clock)  # an active campaign would have made requests from a valid body
    before = row_counts()

    response = post_order(client, raw)

    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json
    answer = response.get_json()
    assert isinstance(answer["error"], str) and answer["error"]
    assert answer.get("field") == field
    assert row_counts() == before


def test_a_missing_field_is_named_once_in_the_error(client):
    response = post_order(client, body_with("occurred_at", DELETE))
    assert response.get_json() == {"error": "occurred_at is required", "field": "occurred_at"}


def test_a_huge_unknown_event_type_is_not_echoed_back_whole(client):
    response = post_order(client, body_with("event_type", "order." + "x" * 100_000))
    answer = response.get_json()
    assert response.status_code == 400 and answer["field"] == "event_type"
    assert answer["error"].startswith("event_type 'order.xxx") and len(answer["error"]) < 300


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"event_id": ', "order webhook refused (400): malformed JSON"),
        (
            body_with("order.items[0].quantity", 0),
            "order webhook refused (400): order.items[0].quantity must be a positive integer [field order.items[0].quantity]",
        ),
    ],
    ids=["malformed", "schema"],
)
def test_a_refused_webhook_leaves_a_warning_for_the_operator(app_caplog, client, raw, expected):
    """Nothing is stored for a refused webhook, so the log line is the server's only trace."""
    assert post_order(client, raw).status_code == 400
    [line] = [r for r in app_caplog.records if "order webhook refused" in r.getMessage()]
    assert line.levelno == logging.WARNING and line.getMessage().startswith(expected)


def test_missing_items_say_required_not_wrong_type(client):
    response = post_order(client, body_with("order.items", DELETE))
    assert response.get_json() == {"error": "order.items is required for order.delivered", "field": "order.items"}


def test_customer_and_tags_may_be_null_or_left_out(client, clock):
    campaign(clock)
    body = order_body(customer=None, tags=None)
    body["order"]["customer"] = None
    assert post_order(client, body).status_code == 202
    del body["order"]["customer"], body["order"]["tags"]
    body["event_id"] = "evt_2"
    assert post_order(client, body).status_code == 202


def test_the_bad_input_table_has_at_least_25_cases():
    assert len(BAD_INPUTS) >= 25
    assert len({c[0] for c in BAD_INPUTS}) == len(BAD_INPUTS)


def test_a_valid_body_passes_the_same_check(client, clock):
    """The control for the table: the unmodified body is accepted (so the table tests the
    mutation, not a broken base body)."""
    campaign(clock)
    assert post_order(client, VALID_JSON.encode()).status_code == 202


# -- latency: a webhook never waits for a tick ----------------------------------------------


def test_a_webhook_arriving_while_a_tick_calls_the_provider_is_answered_at_once(app_factory, clock):
    """The provider answers slowly (here: it takes the length of a whole webhook). The
    tick holds no database transaction meanwhile, so the webhook neither waits for the
    write lock (SQLite would make it wait up to its 30 s busy timeout, then 503) nor is
    stamped late: its received_at is the moment it arrived, before the clock moved on."""
    from app.lifecycle.dispatch import dispatch_due
    from app.outbox.provider import OutboxProvider
    from app.providers.base import register

    webhook_app = app_factory()
    seen = {}

    @register("slow_while_a_webhook_arrives")
    class SlowProvider(OutboxProvider):
        def send(self, message):
            if "status" not in seen:
                readings = iter(clock() + timedelta(seconds=n) for n in range(1, 1000))
                webhook_app.config["CLOCK"] = lambda: next(readings)  # each reading a second later
                response = post_order(webhook_app.test_client(), order_body("evt_during", order_id="2002"))
                seen.update(status=response.status_code, first_reading=clock() + timedelta(seconds=1))
            return super().send(message)

    tick_app = app_factory(EMAIL_PROVIDER="slow_while_a_webhook_arrives", SMS_PROVIDER="slow_while_a_webhook_arrives")
    with tick_app.app_context():
        campaign(clock, delay_days=0)
        post_order(tick_app.test_client(), order_body())
        report = dispatch_due(clock())
        assert report.sent == 1
        assert seen["status"] == 202
        record = db.session.scalar(select(OrderEvent).where(OrderEvent.event_id == "evt_during"))
        assert record.received_at == seen["first_reading"]
