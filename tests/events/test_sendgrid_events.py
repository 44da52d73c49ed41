"""SendGrid Event Webhook: real ECDSA signatures, the event mapping, bad events in a batch,
and replayed / out-of-order deliveries ending in the same state as one in-order delivery."""

import json
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.lifecycle.models import TestimonialRequestEvent
from app.optouts.models import ContactEvent, OptOut
from tests.events_helpers import (
    PRODUCTION,
    SG_TIMESTAMP,
    T0,
    SendGridSigner,
    post_sendgrid,
    sg_event,
    snapshot,
    webhook_fixtures,
    world_fixture,
)
from tests.factories import campaign, events_of, order_body, post_order, request_row, row_counts, sent_request, tick
from tests.provider_helpers import production_config

signer, app = webhook_fixtures()
world = world_fixture()


def at(seconds):
    return datetime.fromtimestamp(T0 + seconds, UTC)


@pytest.fixture
def sent(client, clock):
    """An email request whose initial message went out at T0; returns its id."""
    return sent_request(client, clock, reminder_delay_days=4, max_reminders=2)


def post(client, signer, *events):
    response = post_sendgrid(client, list(events), signer)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- signatures ------------------------------------------------------------------------------


def test_a_signed_batch_is_accepted(client, signer, sent):
    answer = post(
        client,
        signer,
        sg_event(sent, "processed"),
        sg_event(sent, "delivered", timestamp=T0 + 5, response="250 2.0.0 OK"),
    )
    assert answer == {"received": 2, "stored": 2, "duplicates": 0, "ignored": [], "rejected": []}
    assert [e.type for e in events_of(sent)][-2:] == ["sent", "delivered"]


BAD_SIGNATURES = {
    "no headers": lambda signer, other, body: {},
    "no timestamp": lambda signer, other, body: {"X-Twilio-Email-Event-Webhook-Signature": signer.sign(body)},
    "no signature": lambda signer, other, body: {"X-Twilio-Email-Event-Webhook-Timestamp": SG_TIMESTAMP},
    "another key": lambda signer, other, body: other.headers(body),
    "another body": lambda signer, other, body: signer.headers(body + b" "),
    "another timestamp": lambda signer, other, body: {
        **signer.headers(body),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(int(SG_TIMESTAMP) + 1),
    },
    "not base64": lambda signer, other, body: {
        **signer.headers(body),
        "X-Twilio-Email-Event-Webhook-Signature": "%%%not-base64%%%",
    },
    "bad base64 padding": lambda signer, other, body: {
        **signer.headers(body),
        "X-Twilio-Email-Event-Webhook-Signature": "abc",
    },
    "not a DER signature": lambda signer, other, body: {
        **signer.headers(body),
        "X-Twilio-Email-Event-Webhook-Signature": "AAAAAAAA",
    },
    "empty signature": lambda signer, other, body: {
        **signer.headers(body),
        "X-Twilio-Email-Event-Webhook-Signature": "",
    },
}


@pytest.mark.parametrize("case", BAD_SIGNATURES)
def test_a_wrong_or_missing_signature_is_refused_and_writes_nothing(client, signer, sent, case):
    body = json.dumps([sg_event(sent, "click", url="https://x"), sg_event(sent, "unsubscribe")]).encode()
    headers = BAD_SIGNATURES[case](signer, SendGridSigner(), body)
    before = row_counts()
    response = post_sendgrid(client, None, headers=headers, raw=body)
    assert response.status_code == 401, response.get_json()
    assert "signature" in response.get_json()["error"].lower()
    assert row_counts() == before
    assert request_row(sent).status == "sent"


def test_a_body_that_is_not_utf8_is_refused_before_parsing(client, signer, sent):
    raw = b'[{"event": "\xff"}]'
    before = row_counts()
    response = post_sendgrid(client, None, headers=signer.headers(raw), raw=raw)
    assert response.status_code == 401
    assert row_counts() == before


def test_without_a_key_development_accepts_unsigned_events(app_factory, clock):
    app = app_factory()  # no SENDGRID_WEBHOOK_PUBLIC_KEY, not production
    with app.app_context():
        client = app.test_client()
        request_id = sent_request(client, clock)
        response = post_sendgrid(client, [sg_event(request_id, "delivered")])
        assert response.status_code == 200
        assert response.get_json()["stored"] == 1


def test_production_without_a_key_refuses_events(app_factory, clock):
    app = app_factory(**PRODUCTION)
    with app.app_context():
        before = row_counts()
        response = post_sendgrid(app.test_client(), [sg_event(1, "unsubscribe")])
        assert response.status_code == 503
        assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in response.get_json()["error"]
        assert row_counts() == before


def test_a_key_that_does_not_parse_answers_503_and_writes_nothing(app_factory, clock):
    app = app_factory(SENDGRID_WEBHOOK_PUBLIC_KEY="bm90IGEga2V5")
    with app.app_context():
        before = row_counts()
        body = json.dumps([sg_event(1, "unsubscribe")]).encode()
        response = post_sendgrid(app.test_client(), None, headers=SendGridSigner().headers(body), raw=body)
        assert response.status_code == 503
        assert "not a valid public key" in response.get_json()["error"]
        assert row_counts() == before


def test_a_pasted_key_with_line_breaks_still_verifies(app_factory, clock, signer):
    wrapped = "\n".join(signer.public_key[i : i + 64] for i in range(0, len(signer.public_key), 64)) + "\n"
    app = app_factory(SENDGRID_WEBHOOK_PUBLIC_KEY=wrapped)
    with app.app_context():
        response = post_sendgrid(app.test_client(), [], signer)
        assert response.status_code == 200


def _production(tmp_path, **settings):
    return production_config(
        tmp_path,
        EMAIL_PROVIDER="sendgrid",
        SENDGRID_API_KEY="SG.key",
        EMAIL_FROM="Shop <reviews@shop.example.org>",
        **settings,
    )


def test_production_with_sendgrid_requires_the_webhook_key(tmp_path, signer):
    with pytest.raises(RuntimeError) as caught:
        create_app(_production(tmp_path, SENDGRID_WEBHOOK_PUBLIC_KEY=None))
    assert "EMAIL_PROVIDER=sendgrid needs SENDGRID_WEBHOOK_PUBLIC_KEY" in str(caught.value)
    with pytest.raises(RuntimeError) as caught:
        create_app(_production(tmp_path, SENDGRID_WEBHOOK_PUBLIC_KEY="bm90IGEga2V5"))
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key" in str(caught.value)
    assert create_app(_production(tmp_path, SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key))


# -- mapping --------------------------------------------------------------------------------


def test_each_event_type_is_recorded_on_the_request(client, signer, sent):
    answer = post(
        client,
        signer,
        sg_event(sent, "processed", timestamp=T0 + 1),
        sg_event(sent, "deferred", timestamp=T0 + 2, response="421 try again later", attempt="1"),
        sg_event(sent, "delivered", timestamp=T0 + 60, response="250 OK"),
        sg_event(sent, "open", timestamp=T0 + 120, sg_machine_open=False),
        sg_event(sent, "click", timestamp=T0 + 180, url="https://reviews.shop.example/r/abc"),
    )
    assert answer["stored"] == 5
    mine = [e for e in events_of(sent) if e.provider == "sendgrid"]
    assert [(e.type, e.channel, e.slot, e.provider_message_id) for e in mine] == [
        ("sent", "email", 0, "msg-1"),
        ("delivery_deferred", "email", 0, "msg-1"),
        ("delivered", "email", 0, "msg-1"),
        ("opened", "email", 0, "msg-1"),
        ("clicked", "email", 0, "msg-1"),
    ]
    assert mine[1].detail == "delivery deferred by the receiving server (attempt 1): 421 try again later"
    assert mine[2].detail == "250 OK"
    assert mine[4].detail == "https://reviews.shop.example/r/abc"
    req = request_row(sent)
    assert req.status == "clicked"
    assert req.clicked_at == at(180)
    assert req.last_event_at == at(180)
    assert req.next_send_at is not None  # reminders keep their plan


def test_processed_delivered_and_open_never_change_the_status(client, signer, sent):
    post(client, signer, sg_event(sent, "processed"), sg_event(sent, "delivered"), sg_event(sent, "open"))
    assert request_row(sent).status == "sent"


def test_the_earliest_click_wins_and_a_late_delivered_keeps_clicked(client, signer, sent):
    post(client, signer, sg_event(sent, "click", timestamp=T0 + 300, event_id="c2"))
    post(
        client,
        signer,
        sg_event(sent, "click", timestamp=T0 + 200, event_id="c1"),
        sg_event(sent, "delivered", timestamp=T0 + 10),
    )
    req = request_row(sent)
    assert (req.status, req.clicked_at) == ("clicked", at(200))


def test_nothing_moves_a_submitted_request(client, signer, sent, clock):
    from app.lifecycle.services import record_submission

    record_submission(request_row(sent), clock())
    db.session.commit()
    answer = post(
        client,
        signer,
        sg_event(sent, "click", timestamp=T0 + 5),
        sg_event(sent, "bounce", reason="x"),
        sg_event(sent, "delivered"),
        sg_event(sent, "open"),
    )
    assert answer["stored"] == 4
    assert request_row(sent).status == "submitted"


def test_a_bounce_of_the_initial_email_fails_the_request_with_the_reason(client, signer, sent, cli):
    post(
        client,
        signer,
        sg_event(
            sent,
            "bounce",
            timestamp=T0 + 30,
            status="5.1.1",
            type="bounce",
            reason="550 5.1.1 The email account that you tried to reach does not exist",
        ),
    )
    req = request_row(sent)
    assert req.status == "failed"
    assert req.next_send_at is None
    assert req.last_error == (
        "email: undelivered [5.1.1]: 550 5.1.1 The email account that you tried to reach does "
        "not exist (reported by sendgrid)"
    )
    [failed] = events_of(sent, "failed")
    assert (failed.error_code, failed.channel, failed.slot) == ("5.1.1", "email", 0)
    # The merchant sees it in the failed list and can press Retry like any failed request.
    assert [r["id"] for r in cli("requests", "list", "--status", "failed")] == [sent]
    assert cli("requests", "retry", str(sent))["status"] == "sent"
    assert cli("dispatch")["sent"] == 1


def test_a_bounced_request_can_be_resent_from_the_initial_message(client, signer, sent, clock):
    from app.lifecycle.services import resend_request
    from tests.factories import outbox

    post(client, signer, sg_event(sent, "bounce", timestamp=T0 + 30, reason="452 mailbox full"))
    resend_request(request_row(sent), clock(), by="merchant")
    db.session.commit()
    assert tick(clock).sent == 1
    assert [m.slot for m in outbox(sent)] == [0, 0]
    assert request_row(sent).status == "sent"


def test_a_dropped_email_fails_the_request_too(client, signer, sent):
    post(client, signer, sg_event(sent, "dropped", reason="Bounced Address"))
    req = request_row(sent)
    assert req.status == "failed"
    assert req.last_error == "email: undelivered [dropped]: Bounced Address (reported by sendgrid)"


def test_a_bounced_reminder_keeps_the_status_and_sets_last_error(client, signer, sent, clock):
    clock.advance(days=4)
    assert tick(clock).sent == 1
    post(
        client,
        signer,
        sg_event(sent, "bounce", slot=1, timestamp=T0 + 4 * 86400 + 60, reason="mailbox full", message_id="msg-2"),
    )
    req = request_row(sent)
    assert req.status == "sent"
    assert req.last_error == "email: undelivered [bounce]: mailbox full (reported by sendgrid)"
    assert req.next_send_at is not None


def test_a_click_after_a_bounce_makes_the_request_clicked_again(client, signer, sent):
    planned = request_row(sent).next_send_at
    post(client, signer, sg_event(sent, "bounce", timestamp=T0 + 30, reason="async bounce"))
    assert request_row(sent).status == "failed"
    post(client, signer, sg_event(sent, "click", timestamp=T0 + 20))
    req = request_row(sent)
    assert (req.status, req.clicked_at, req.next_send_at) == ("clicked", at(20), planned)


def test_a_bounce_after_a_click_does_not_fail_the_request(client, signer, sent):
    post(client, signer, sg_event(sent, "click", timestamp=T0 + 20))
    post(client, signer, sg_event(sent, "bounce", timestamp=T0 + 30, reason="async bounce"))
    req = request_row(sent)
    assert req.status == "clicked"
    assert "async bounce" in req.last_error


def test_last_error_tells_the_latest_failure_whatever_the_arrival_order(client, signer, sent):
    post(client, signer, sg_event(sent, "bounce", timestamp=T0 + 90, reason="second", event_id="b2"))
    post(
        client,
        signer,
        sg_event(sent, "deferred", timestamp=T0 + 10, response="first"),
        sg_event(sent, "bounce", timestamp=T0 + 30, reason="first", event_id="b1"),
    )
    assert "second" in request_row(sent).last_error


def test_unsubscribe_spamreport_and_group_unsubscribe_opt_the_address_out(client, signer, clock):
    campaign(clock, delay_days=2)
    bodies = [order_body(f"e{n}", order_id=f"o{n}", customer={"email": f"c{n}@example.com"}) for n in range(3)]
    ids = [post_order(client, body).get_json()["created"][0] for body in bodies]
    answer = post(
        client,
        signer,
        sg_event(ids[0], "unsubscribe", email="c0@example.com"),
        sg_event(ids[1], "spamreport", email="C1@Example.com"),
        sg_event(ids[2], "group_unsubscribe", email="c2@example.com", asm_group_id=42),
    )
    assert answer["stored"] == 3
    rows = {o.contact: o.source for o in db.session.scalars(select(OptOut))}
    assert rows == {
        "c0@example.com": "sendgrid_unsubscribe",
        "c1@example.com": "sendgrid_spamreport",
        "c2@example.com": "sendgrid_group_unsubscribe",
    }
    for request_id in ids:
        req = request_row(request_id)
        assert req.status == "cancelled"
        assert [e.type for e in events_of(request_id)][-2:] == ["opted_out", "cancelled"]
    assert events_of(ids[2], "opted_out")[0].detail == "the customer unsubscribed from the group (group 42)"


def test_events_map_by_message_id_when_custom_args_are_missing(client, signer, sent):
    message_id = request_row(sent).email_message_id
    answer = post(client, signer, sg_event(None, "delivered", message_id=message_id))
    assert answer["stored"] == 1
    [delivered] = events_of(sent, "delivered")
    assert (delivered.slot, delivered.provider_message_id) == (0, message_id)


def test_an_event_whose_address_is_not_the_requests_is_rejected(client, signer, sent):
    answer = post(
        client,
        signer,
        sg_event(sent, "bounce", email="someone.else@example.com", reason="x"),
        sg_event(sent, "unsubscribe", email="someone.else@example.com"),
    )
    assert answer["rejected"] == [
        {
            "index": 0,
            "error": f"request {sent} was not sent to someone.else@example.com",
            "event": "bounce",
            "sg_event_id": f"ev-bounce-{sent}-{T0}",
        }
    ]
    assert request_row(sent).status == "sent"
    assert events_of(sent, "failed") == [] and events_of(sent, "opted_out") == []
    # The unsubscribe is still honoured for the address that sent it.
    assert db.session.scalar(select(OptOut.contact)) == "someone.else@example.com"


def test_events_for_other_mail_are_ignored_not_rejected(client, signer, sent):
    answer = post(
        client,
        signer,
        sg_event(None, "delivered", message_id="somebody-elses-mail"),
        {**sg_event(None, "bounce", message_id="x"), "request_id": "None"},
    )
    assert answer["stored"] == 0 and answer["rejected"] == []
    assert [i["index"] for i in answer["ignored"]] == [0, 1]
    assert "not a testimonial request message" in answer["ignored"][0]["reason"]


def test_unknown_event_types_are_ignored(client, signer, sent):
    answer = post(client, signer, sg_event(sent, "machine_learning_magic"))
    assert answer["ignored"] == [
        {
            "index": 0,
            "reason": "sendgrid event 'machine_learning_magic' is not tracked",
            "event": "machine_learning_magic",
            "sg_event_id": f"ev-machine_learning_magic-{sent}-{T0}",
        }
    ]


# -- bad events and bad batches ---------------------------------------------------------------


def test_a_batch_with_bad_events_stores_the_good_ones_and_lists_the_bad(client, signer, sent):
    good = [sg_event(sent, "delivered"), sg_event(sent, "open", timestamp=T0 + 9)]
    bad = [
        "not an object",
        {"email": "ada@example.com", "timestamp": T0},  # no event
        {**sg_event(sent, "open"), "timestamp": "yesterday"},
        {**sg_event(sent, "open"), "timestamp": 10**12},
        {**sg_event(sent, "open"), "sg_event_id": ["x"]},
        {**sg_event(sent, "open"), "email": 42, "sg_event_id": "bad-email"},
        sg_event(987654, "delivered"),  # a request we do not have
        {**sg_event(sent, "unsubscribe"), "email": None, "request_id": None, "sg_message_id": None},
    ]
    batch = [good[0], *bad, good[1]]
    answer = post(client, signer, *batch)
    assert answer["received"] == 10
    assert answer["stored"] == 2
    assert [r["index"] for r in answer["rejected"]] == list(range(1, 9))
    errors = [r["error"] for r in answer["rejected"]]
    assert errors[0] == "an event must be a JSON object"
    assert errors[1] == "field 'event' is missing"
    assert "timestamp" in errors[2] and "timestamp" in errors[3]
    assert "sg_event_id" in errors[4] and "email" in errors[5]
    assert errors[6] == "no request with id 987654"
    assert "needs the 'email' field" in errors[7]
    assert [e.type for e in events_of(sent)][-2:] == ["delivered", "opened"]


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2", b'{"event": "open"}', b"NaN", b"[NaN]", b'"text"'])
def test_a_body_that_is_not_a_json_array_is_a_400_and_writes_nothing(client, signer, sent, raw):
    before = row_counts()
    response = post_sendgrid(client, None, headers=signer.headers(raw), raw=raw)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert row_counts() == before


def test_a_body_over_the_size_limit_is_a_413(app_factory, signer):
    app = app_factory(SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key, WEBHOOK_MAX_BYTES=1000)
    with app.app_context():
        raw = json.dumps([sg_event(1, "open", padding="x" * 2000)]).encode()
        response = post_sendgrid(app.test_client(), None, headers=signer.headers(raw), raw=raw)
        assert response.status_code == 413


def test_the_endpoint_needs_no_csrf_token(app_factory, signer, clock):
    app = app_factory(SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key, WTF_CSRF_ENABLED=True)
    with app.app_context():
        response = post_sendgrid(app.test_client(), [], signer)
        assert response.status_code == 200


# -- idempotency ------------------------------------------------------------------------------


def test_a_replayed_batch_changes_nothing(client, signer, sent):
    batch = [sg_event(sent, "delivered"), sg_event(sent, "click", timestamp=T0 + 40), sg_event(sent, "unsubscribe")]
    post(client, signer, *batch)
    first = snapshot([sent])
    counts = row_counts()
    answer = post(client, signer, *batch)
    assert answer == {"received": 3, "stored": 0, "duplicates": 3, "ignored": [], "rejected": []}
    assert snapshot([sent]) == first
    assert row_counts() == counts


def test_the_same_event_twice_in_one_batch_is_stored_once(client, signer, sent):
    answer = post(client, signer, sg_event(sent, "click", timestamp=T0 + 5), sg_event(sent, "click", timestamp=T0 + 5))
    assert (answer["stored"], answer["duplicates"]) == (1, 1)
    assert len(events_of(sent, "clicked")) == 1


def test_events_without_an_event_id_are_deduplicated_per_minute(client, signer, sent):
    def no_id(**fields):
        event = sg_event(sent, "open", **fields)
        del event["sg_event_id"]
        return event

    post(client, signer, no_id(timestamp=T0 + 60), no_id(timestamp=T0 + 61))
    post(client, signer, no_id(timestamp=T0 + 119))
    assert len(events_of(sent, "opened")) == 1
    post(client, signer, no_id(timestamp=T0 + 120))
    assert len(events_of(sent, "opened")) == 2


# The same events, delivered once in order, twice, reversed, shuffled or as one batch, leave
# the same rows and the same status.
SCENARIOS = {
    "journey": lambda r: [
        sg_event(r, "processed", timestamp=T0 + 1),
        sg_event(r, "deferred", timestamp=T0 + 5),
        sg_event(r, "delivered", timestamp=T0 + 60),
        sg_event(r, "open", timestamp=T0 + 90),
        sg_event(r, "click", timestamp=T0 + 120),
        sg_event(r, "open", timestamp=T0 + 400),
        sg_event(r, "click", timestamp=T0 + 500),
    ],
    "bounce and click": lambda r: [
        sg_event(r, "processed", timestamp=T0 + 1),
        sg_event(r, "bounce", timestamp=T0 + 30, reason="async"),
        sg_event(r, "click", timestamp=T0 + 45),
    ],
    "bounce only": lambda r: [
        sg_event(r, "processed", timestamp=T0 + 1),
        sg_event(r, "delivered", timestamp=T0 + 2),
        sg_event(r, "bounce", timestamp=T0 + 30, reason="late bounce"),
        sg_event(r, "dropped", timestamp=T0 + 31, reason="Bounced Address"),
    ],
    "unsubscribe": lambda r: [
        sg_event(r, "delivered", timestamp=T0 + 2),
        sg_event(r, "click", timestamp=T0 + 20),
        sg_event(r, "unsubscribe", timestamp=T0 + 30),
        sg_event(r, "bounce", timestamp=T0 + 40, reason="x"),
    ],
    "no event ids": lambda r: [
        {k: v for k, v in e.items() if k != "sg_event_id"}
        for e in (
            sg_event(r, "delivered", timestamp=T0 + 2),
            sg_event(r, "open", timestamp=T0 + 3),
            sg_event(r, "click", timestamp=T0 + 100),
        )
    ],
}


def deliveries(events, variant):
    one_by_one = [[e] for e in events]
    if variant == "once in order":
        return one_by_one
    if variant == "replayed":
        return one_by_one + one_by_one
    if variant == "reversed":
        return one_by_one[::-1]
    if variant == "shuffled and replayed":
        shuffled = one_by_one * 2
        random.Random(4).shuffle(shuffled)
        return shuffled
    if variant == "one reversed batch, twice":
        return [events[::-1], events[::-1]]
    raise AssertionError(variant)


def run_world(world, clock, signer, scenario, variant):
    clock.set("2026-11-20T12:00:00Z")
    app = world()
    with app.app_context():
        client = app.test_client()
        request_id = sent_request(client, clock, reminder_delay_days=3)
        baseline = db.session.scalar(select(db.func.max(TestimonialRequestEvent.id)))
        events = SCENARIOS[scenario](request_id)
        clock.advance(minutes=10)
        for batch in deliveries(events, variant):
            response = post_sendgrid(client, batch, signer)
            assert response.status_code == 200 and not response.get_json()["rejected"], response.get_json()
        state = snapshot([request_id])
        state["events"] = [e for e in state["events"] if int(e[0]) == request_id]
        state["new_events"] = db.session.scalar(
            select(db.func.count(TestimonialRequestEvent.id)).where(TestimonialRequestEvent.id > baseline)
        )
        state["contact_events"] = sorted(
            (c.type, c.contact, c.dedupe_key) for c in db.session.scalars(select(ContactEvent))
        )
        return state


@pytest.mark.parametrize("variant", ["replayed", "reversed", "shuffled and replayed", "one reversed batch, twice"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replayed_or_reordered_events_end_in_the_same_state(world, clock, signer, scenario, variant):
    expected = run_world(world, clock, signer, scenario, "once in order")
    assert run_world(world, clock, signer, scenario, variant) == expected


def test_the_scenarios_end_where_the_rules_say(world, clock, signer):
    ends = {name: run_world(world, clock, signer, name, "once in order")["requests"][0]["status"] for name in SCENARIOS}
    assert ends == {
        "journey": "clicked",
        "bounce and click": "clicked",
        "bounce only": "failed",
        "unsubscribe": "cancelled",
        "no event ids": "clicked",
    }


def test_answers_without_calling_a_provider(client, signer, sent):
    from tests.factories import outbox

    before = len(outbox())
    post(client, signer, sg_event(sent, "bounce", reason="x"), sg_event(sent, "unsubscribe"))
    assert len(outbox()) == before


def test_timestamps_become_event_times(client, signer, sent):
    post(client, signer, sg_event(sent, "delivered", timestamp=T0 + 3600))
    [delivered] = events_of(sent, "delivered")
    assert delivered.occurred_at == at(0) + timedelta(hours=1)


def test_a_bounce_reads_in_plain_words_with_retry_on_the_log_and_the_detail(client, signer, sent, logged_in):
    """A hard bounce: the sentence comes from the stored fields (kind address, reported by
    SendGrid); the row offers Retry and a link to correct the address."""
    post(client, signer, sg_event(sent, "bounce", timestamp=T0 + 30, status="5.1.1", type="bounce", reason="550 no"))
    sentence = (
        "Email: the address was rejected permanently (the receiving mail server says the address does not "
        "exist) (reported by SendGrid) — correct the email address, then Retry"
    )
    log_page = logged_in.get("/requests/").get_data(as_text=True)
    row = re.search(rf'<tr class="[^"]*" data-request-id="{sent}">.*?</tr>', log_page, re.S).group(0)
    assert sentence in " ".join(re.sub(r"<[^>]+>", " ", row).split())
    assert f"/requests/{sent}/retry" in row and f"/requests/{sent}/contact" in row
    detail = logged_in.get(f"/requests/{sent}").get_data(as_text=True)
    assert sentence in detail and "Provider said: <span" in detail
    [failed] = events_of(sent, "failed")
    assert (failed.error_code, failed.error_kind, failed.detail) == ("5.1.1", "address", "550 no")
