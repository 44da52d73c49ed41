"""Twilio status and inbound webhooks: X-Twilio-Signature computed with the SDK's
RequestValidator, the status mapping, STOP/START, and replayed or reordered callbacks
ending in the same state as one in-order delivery."""

import logging
import random
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.lifecycle.models import TestimonialRequestEvent
from app.monitoring.models import DailyStat
from app.optouts.models import ContactEvent, OptOut
from tests.events_helpers import (
    PHONE,
    PRODUCTION,
    PUBLIC_BASE_URL,
    T0,
    TWILIO_INBOUND_PATH,
    TWILIO_STATUS_PATH,
    TWILIO_TOKEN,
    inbound_params,
    post_sendgrid,
    post_twilio,
    sg_event,
    snapshot,
    status_params,
    twilio_signature,
    webhook_fixtures,
    world_fixture,
)
from tests.factories import events_of, request_row, row_counts, sent_request, tick

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'

signer, app = webhook_fixtures()
world = world_fixture()


@pytest.fixture
def sms(client, clock):
    """An SMS request whose initial text went out; returns (request id, message SID)."""
    request_id = sent_request(client, clock, channel="sms", reminder_delay_days=2)
    return request_id, request_row(request_id).sms_message_id


def status(client, sid, value, **kwargs):
    response = post_twilio(client, TWILIO_STATUS_PATH, status_params(sid, value, **kwargs))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- signatures ------------------------------------------------------------------------------


def test_a_signed_status_callback_is_accepted(client, sms):
    request_id, sid = sms
    assert status(client, sid, "delivered") == {"status": "stored", "message_sid": sid, "message_status": "delivered"}
    [delivered] = events_of(request_id, "delivered")
    assert (delivered.channel, delivered.slot, delivered.provider, delivered.provider_message_id) == (
        "sms",
        0,
        "twilio",
        sid,
    )


def _bad_signatures(path, params):
    url = PUBLIC_BASE_URL + path
    return {
        "missing": (params, None),
        "empty": (params, ""),
        "another token": (params, twilio_signature(url, params, token="not-the-token")),
        "the request's own host, not PUBLIC_BASE_URL": (params, twilio_signature("http://localhost" + path, params)),
        "another path": (params, twilio_signature(PUBLIC_BASE_URL + "/webhooks/other", params)),
        "a field changed after signing": ({**params, "ErrorCode": "21610"}, twilio_signature(url, params)),
        "a field added after signing": ({**params, "Extra": "1"}, twilio_signature(url, params)),
        "garbage": (params, "!!!"),
    }


BAD_CASES = list(_bad_signatures("/", {}))


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("path", [TWILIO_STATUS_PATH, TWILIO_INBOUND_PATH])
def test_a_wrong_or_missing_signature_is_refused_and_writes_nothing(client, sms, case, path):
    request_id, sid = sms
    params = status_params(sid, "failed", error_code=30003) if path == TWILIO_STATUS_PATH else inbound_params("STOP")
    params, signature = _bad_signatures(path, params)[case]
    before = row_counts()
    response = post_twilio(client, path, params, signature=signature or "", token=None)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert "X-Twilio-Signature" in response.get_json()["error"]
    assert row_counts() == before
    assert request_row(request_id).status == "sent"


def test_the_query_string_is_part_of_the_signed_url(client, sms):
    request_id, sid = sms
    params = status_params(sid, "delivered")
    assert post_twilio(client, TWILIO_STATUS_PATH, params, query="shop=1").status_code == 200
    unsigned_query = twilio_signature(PUBLIC_BASE_URL + TWILIO_STATUS_PATH, params)
    response = post_twilio(client, TWILIO_STATUS_PATH, params, signature=unsigned_query, query="shop=2")
    assert response.status_code == 401


def test_sha256_signatures_named_by_the_settings_header_are_accepted(client, sms):
    request_id, sid = sms
    params = status_params(sid, "delivered")
    signature = twilio_signature(PUBLIC_BASE_URL + TWILIO_STATUS_PATH, params, algorithm="HMAC_SHA256")
    response = client.post(
        TWILIO_STATUS_PATH,
        data=params,
        headers={
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256",
        },
    )
    assert response.status_code == 200


def test_without_a_token_development_accepts_unsigned_callbacks(app_factory, clock):
    app = app_factory()
    with app.app_context():
        client = app.test_client()
        response = post_twilio(client, TWILIO_INBOUND_PATH, inbound_params("STOP"), token=None)
        assert response.status_code == 200
        assert db.session.scalar(select(OptOut.contact)) == PHONE


@pytest.mark.parametrize("path", [TWILIO_STATUS_PATH, TWILIO_INBOUND_PATH])
def test_production_without_a_token_refuses_callbacks(app_factory, path):
    app = app_factory(**PRODUCTION)
    with app.app_context():
        before = row_counts()
        response = post_twilio(app.test_client(), path, inbound_params("STOP"), token=None)
        assert response.status_code == 503
        assert "TWILIO_AUTH_TOKEN" in response.get_json()["error"]
        assert row_counts() == before


def test_a_body_over_the_size_limit_is_a_413(app_factory):
    app = app_factory(TWILIO_AUTH_TOKEN=TWILIO_TOKEN, WEBHOOK_MAX_BYTES=500)
    with app.app_context():
        response = post_twilio(app.test_client(), TWILIO_INBOUND_PATH, inbound_params("x" * 1000))
        assert response.status_code == 413


# -- status mapping ---------------------------------------------------------------------------


def test_sent_and_delivered_are_recorded_without_changing_the_status(client, sms):
    request_id, sid = sms
    status(client, sid, "sent")
    status(client, sid, "delivered")
    assert [e.type for e in events_of(request_id) if e.provider == "twilio"] == ["sent", "delivered"]
    assert events_of(request_id)[-2].detail == "Twilio handed the message to the carrier"
    assert request_row(request_id).status == "sent"


@pytest.mark.parametrize("value", ["queued", "accepted", "sending", "scheduled", "canceled", "read"])
def test_intermediate_statuses_are_ignored(client, sms, value):
    request_id, sid = sms
    before = row_counts()
    answer = status(client, sid, value)
    assert answer["status"] == "ignored"
    assert row_counts() == before


def test_an_undelivered_initial_text_fails_the_request_with_the_error_code(client, sms, cli):
    request_id, sid = sms
    status(client, sid, "sent")
    status(client, sid, "undelivered", error_code=30003)
    req = request_row(request_id)
    assert req.status == "failed"
    assert req.last_error == (
        "sms: undelivered [30003]: the phone was unreachable (switched off or out of coverage) (reported by twilio)"
    )
    [failed] = events_of(request_id, "failed")
    assert (failed.error_code, failed.channel, failed.slot) == ("30003", "sms", 0)
    assert cli("requests", "retry", str(request_id))["status"] == "sent"


def test_error_21610_opts_the_number_out_and_cancels_the_request(client, sms):
    request_id, sid = sms
    status(client, sid, "failed", error_code=21610)
    optout = db.session.scalar(select(OptOut))
    assert (optout.channel, optout.contact, optout.source) == ("sms", PHONE, "twilio_21610")
    req = request_row(request_id)
    assert req.status == "cancelled"
    assert events_of(request_id)[-1].detail == "customer opted out (sms, twilio_21610)"


def test_a_failed_reminder_keeps_the_status_and_old_messages_still_map(client, sms, clock):
    request_id, first_sid = sms
    clock.advance(days=2)
    assert tick(clock).sent == 1
    reminder_sid = request_row(request_id).sms_message_id
    assert reminder_sid != first_sid
    status(client, reminder_sid, "undelivered", error_code=30005)
    status(client, first_sid, "delivered")  # the initial message's late report still finds its slot
    req = request_row(request_id)
    assert req.status == "sent"
    assert "30005" in req.last_error
    assert [(e.type, e.slot) for e in events_of(request_id) if e.provider == "twilio"] == [
        ("failed", 1),
        ("delivered", 0),
    ]


def test_a_callback_for_an_unknown_message_is_ignored(client, sms):
    before = row_counts()
    answer = status(client, "SM" + "f" * 32, "delivered")
    assert answer["status"] == "ignored"
    assert "no request matches" in answer["reason"]
    assert row_counts() == before


@pytest.mark.parametrize("path", [TWILIO_STATUS_PATH, TWILIO_INBOUND_PATH])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "development-unsigned"])
def test_a_json_callback_is_a_415_that_says_twilio_posts_form_fields(app, app_factory, clock, path, signed):
    """A JSON test call used to read as an empty form: a 401 that blamed PUBLIC_BASE_URL, or
    "field 'MessageSid' is missing" for a field that was there."""
    target = app if signed else app_factory()
    with target.app_context():
        before = row_counts()
        response = target.test_client().post(
            path, json={"MessageSid": "SM1", "MessageStatus": "delivered", "From": PHONE, "Body": "STOP"}
        )
        assert response.status_code == 415
        assert "application/x-www-form-urlencoded" in response.get_json()["error"]
        assert row_counts() == before


def test_a_refused_callback_leaves_a_warning_for_the_operator(client, sms, caplog):
    logger = logging.getLogger("app")  # does not propagate to the root, where caplog listens
    logger.addHandler(caplog.handler)
    try:
        assert post_twilio(client, TWILIO_STATUS_PATH, {"MessageStatus": "delivered"}).status_code == 400
    finally:
        logger.removeHandler(caplog.handler)
    assert [(r.levelno, r.getMessage()) for r in caplog.records if "refused" in r.getMessage()] == [
        (logging.WARNING, "/webhooks/twilio/status refused (400): field 'MessageSid' is missing")
    ]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"MessageStatus": "delivered"},
        {"MessageSid": "SM1"},
        {"MessageSid": "SM" + "1" * 100, "MessageStatus": "delivered"},
    ],
)
def test_a_callback_without_its_fields_is_a_400(client, sms, params):
    before = row_counts()
    response = post_twilio(client, TWILIO_STATUS_PATH, params)
    assert response.status_code == 400
    assert row_counts() == before


def test_an_undelivered_text_keeps_a_two_channel_request_whose_email_went_out(client, clock, signer):
    request_id = sent_request(client, clock, channel="both")
    sid = request_row(request_id).sms_message_id
    status(client, sid, "undelivered", error_code=30006)
    assert request_row(request_id).status == "sent"
    # …until the email bounces too: now nothing reached the customer.
    response = post_sendgrid(client, [sg_event(request_id, "bounce", reason="no such user")], signer)
    assert response.status_code == 200
    assert request_row(request_id).status == "failed"


# -- inbound: STOP and START ---------------------------------------------------------------------


def inbound(client, body, **kwargs):
    response = post_twilio(client, TWILIO_INBOUND_PATH, inbound_params(body, **kwargs))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == EMPTY_TWIML
    return response


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "  Stop \n",
        "STOP.",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "opt out",
    ],
)
def test_stop_keywords_opt_the_number_out_and_cancel_its_requests(client, sms, body):
    request_id, _ = sms
    inbound(client, body)
    optout = db.session.scalar(select(OptOut))
    assert (optout.channel, optout.contact, optout.source) == ("sms", PHONE, "sms_stop")
    assert request_row(request_id).status == "cancelled"
    assert events_of(request_id)[-1].detail == "customer opted out (sms, sms_stop)"


@pytest.mark.parametrize("body", ["Thanks!", "please stop", "STOP IT", "", "START NOW"])
def test_other_texts_change_nothing(client, sms, body):
    before = row_counts()
    inbound(client, body)
    assert row_counts() == before


def test_advanced_opt_out_type_is_trusted_over_the_text(client, sms):
    inbound(client, "Arrêt", OptOutType="STOP")
    assert db.session.scalar(select(OptOut.source)) == "sms_stop"
    inbound(client, "Reprendre", OptOutType="START", sid="SM" + "2" * 32)
    assert db.session.scalar(select(OptOut.id)) is None


def test_a_stop_from_a_short_code_or_whatsapp_is_ignored(client, sms):
    inbound(client, "STOP", sender="whatsapp:+15551234567")
    inbound(client, "STOP", sender="12345", sid="SM" + "3" * 32)
    assert db.session.scalar(select(OptOut.id)) is None


def test_inbound_without_sender_is_a_400(client, sms):
    params = inbound_params("STOP")
    del params["From"]
    assert post_twilio(client, TWILIO_INBOUND_PATH, params).status_code == 400


# -- idempotency: replayed and reordered callbacks ---------------------------------------------

SCENARIOS = {
    "delivered": ["sent", "delivered"],
    "undelivered": ["sent", "undelivered:30003", "failed:30003"],
    "opted out by carrier": ["sent", "failed:21610", "delivered"],
    "both channels fail": ["sent", "undelivered:30006", "email:delivered", "email:bounce"],
    "email bounces, text arrives": ["email:bounce", "sent", "delivered"],
    "click beats failures": ["undelivered:30003", "email:bounce", "email:click", "STOP"],
}


def deliver(client, signer, request_id, sid, step):
    if step == "STOP":
        inbound(client, "STOP")
        return
    if step.startswith("email:"):
        event = step.split(":", 1)[1]
        response = post_sendgrid(client, [sg_event(request_id, event, timestamp=T0 + 30, reason="x")], signer)
        assert response.status_code == 200 and response.get_json()["rejected"] == []
        return
    value, _, code = step.partition(":")
    status(client, sid, value, error_code=code or None)


def run_world(world, clock, signer, steps):
    clock.set("2026-11-20T12:00:00Z")
    app = world()
    with app.app_context():
        client = app.test_client()
        request_id = sent_request(client, clock, channel="both", reminder_delay_days=3)
        sid = request_row(request_id).sms_message_id
        clock.advance(minutes=5)
        for step in steps:
            deliver(client, signer, request_id, sid, step)
        state = snapshot([request_id])
        state["contact_events"] = sorted(
            (c.type, c.contact, c.source) for c in db.session.scalars(select(ContactEvent))
        )
        # daily_stats by its figures, not its rows: a counter that went back to 0 keeps its row.
        state["rows"] = {k: v for k, v in row_counts().items() if k not in ("dispatch_ticks", "daily_stats")}
        state["daily_stats"] = sorted(
            (s.day, s.campaign_id, s.measure, s.status, s.provider, s.channel, s.n)
            for s in db.session.scalars(select(DailyStat).where(DailyStat.n != 0))
        )
        return state


def variants(steps):
    shuffled = steps * 2
    random.Random(7).shuffle(shuffled)
    return {"replayed": steps + steps, "reversed": steps[::-1], "shuffled and replayed": shuffled}


@pytest.mark.parametrize("variant", ["replayed", "reversed", "shuffled and replayed"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replayed_or_reordered_callbacks_end_in_the_same_state(world, clock, signer, scenario, variant):
    steps = SCENARIOS[scenario]
    expected = run_world(world, clock, signer, steps)
    assert run_world(world, clock, signer, variants(steps)[variant]) == expected


def test_the_scenarios_end_where_the_rules_say(world, clock, signer):
    ends = {name: run_world(world, clock, signer, steps)["requests"][0]["status"] for name, steps in SCENARIOS.items()}
    assert ends == {
        "delivered": "sent",
        "undelivered": "sent",
        "opted out by carrier": "sent",
        "both channels fail": "failed",
        "email bounces, text arrives": "sent",
        "click beats failures": "clicked",
    }


def test_provider_event_rows_carry_their_dedupe_key(client, sms):
    request_id, sid = sms
    status(client, sid, "delivered")
    status(client, sid, "delivered")
    keys = db.session.scalars(
        select(TestimonialRequestEvent.dedupe_key).where(TestimonialRequestEvent.dedupe_key.is_not(None))
    ).all()
    assert keys == [f"twilio:{sid}:delivered"]


def test_an_undelivered_text_reads_in_plain_words_with_retry_on_the_log_and_the_detail(client, logged_in, sms):
    """A 30003 status callback: the sentence is built from the stored fields (code 30003,
    kind undelivered, reported by Twilio), the Retry button offered where it is failed."""
    request_id, sid = sms
    status(client, sid, "undelivered", error_code=30003)
    sentence = (
        "SMS: the message was not delivered: the phone was unreachable (switched off or out of coverage) "
        "(reported by Twilio) — Retry to send again, or correct the contact details first"
    )
    log_page = logged_in.get("/requests/").get_data(as_text=True)
    row = re.search(rf'<tr class="[^"]*" data-request-id="{request_id}">.*?</tr>', log_page, re.S).group(0)
    assert sentence in " ".join(re.sub(r"<[^>]+>", " ", row).split())
    assert f"/requests/{request_id}/retry" in row
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert sentence in detail and f"/requests/{request_id}/retry" in detail
    assert 'data-kind="undelivered"' in detail
    [failed] = events_of(request_id, "failed")
    assert (failed.error_code, failed.error_kind, failed.retryable, failed.provider) == (
        "30003",
        "undelivered",
        False,
        "twilio",
    )
