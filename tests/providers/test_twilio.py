"""Twilio provider: the real SDK against a fake Twilio on 127.0.0.1 — the form Twilio
receives, each error class, timeouts and refused connections — and retry vs permanent
handling end to end through a dispatch tick, including 21610 opting the number out.

Spec §3 (output: the provider reference), §6 (retryable vs permanent, bounded attempts),
§3/§7 (a send whose outcome is unknown is never retried on its own: no duplicate message),
§11 (channel differences handled gracefully)."""

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.optouts.models import OptOut
from app.providers import OutgoingMessage, get_provider
from app.providers.checks import check_providers
from config import provider_config_problems
from tests.conftest import parse
from tests.factories import campaign, order_body
from tests.fake_http import refused_url
from tests.provider_helpers import production_config, provider_error, provider_fixtures

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "test-auth-token"
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
ACCOUNT = f"/2010-04-01/Accounts/{SID}.json"
PHONE = "+15551234567"


def twilio_settings(api):
    return {
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+15017122661",
        "TWILIO_API_BASE_URL": api.url,
        "TWILIO_TIMEOUT_SECONDS": 0.5,
    }


api, make_app, provider_app, run = provider_fixtures(twilio_settings)


def message(**fields):
    values = {
        "channel": "sms",
        "to": PHONE,
        "subject": None,
        "html": None,
        "text": "Mug Shop: how is your mug? Record a short video: https://r.example/r/t",
        "request_id": 7,
        "campaign_id": 3,
        "slot": 0,
    }
    return OutgoingMessage(**{**values, **fields})


def send(msg=None):
    return get_provider("sms").send(msg or message())


def created(sid="SM" + "a" * 32, status="queued"):
    return {"sid": sid, "status": status, "account_sid": SID, "to": PHONE, "body": "…", "num_segments": "1"}


def legacy_error(status, code, text):
    return {"code": code, "message": text, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


# -- the request Twilio receives --------------------------------------------------------


def test_send_posts_the_form_with_status_callback_and_keeps_the_sid(provider_app, api):
    api.reply(201, created("SM123"), method="POST", path=MESSAGES)

    assert send() == "SM123"

    [request] = api.requests
    assert (request.method, request.path) == ("POST", MESSAGES)
    assert request.form() == {
        "To": PHONE,
        "From": "+15017122661",
        "Body": "Mug Shop: how is your mug? Record a short video: https://r.example/r/t",
        "StatusCallback": "http://testserver.local/webhooks/twilio/status",
    }
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


def test_messaging_service_replaces_from_and_local_base_url_has_no_callback(make_app, api):
    app = make_app(TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32, PUBLIC_BASE_URL="http://127.0.0.1:5000")
    api.reply(201, created("SM9", status="accepted"), path=MESSAGES)
    with app.app_context():
        assert send() == "SM9"
    form = api.requests[0].form()
    assert form["MessagingServiceSid"] == "MG" + "1" * 32
    # Twilio could never reach a local address: no callback rather than a doomed one.
    assert "From" not in form and "StatusCallback" not in form


# -- error classes ----------------------------------------------------------------------

PERMANENT = [
    (21211, "The 'To' number +15005550001 is not a valid phone number.", "invalid 'To' phone number"),
    (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
        "sending to this region is not enabled on the Twilio account",
    ),
    (
        21606,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
        "the 'From' number cannot send this message",
    ),
    (21610, "Attempt to send to unsubscribed recipient", "the recipient unsubscribed (replied STOP)"),
    (
        21612,
        "The 'To' phone number is not currently reachable via SMS.",
        "Twilio cannot route a message to this number",
    ),
    (21614, "'To' number is not a valid mobile number", "the 'To' number is not a mobile number"),
]


@pytest.mark.parametrize(("code", "text", "label"), PERMANENT, ids=[str(c[0]) for c in PERMANENT])
def test_permanent_twilio_codes(provider_app, api, code, text, label):
    api.reply(400, legacy_error(400, code, text), path=MESSAGES)
    error = provider_error(send)
    assert (error.retryable, error.code) == (False, code)
    assert error.message == (f"{label}: Unable to create record: {text} (HTTP 400)")
    assert error.opt_out is (code == 21610)


OTHER = [
    # status, body, retryable, code, words
    (429, legacy_error(429, 20429, "Too Many Requests"), True, 20429, "rate limit reached"),
    (
        429,
        {
            "type": "https://www.twilio.com/docs/api/errors/20429",
            "title": "Too Many Requests",
            "status": 429,
            "code": 20429,
            "detail": "slow down",
        },
        True,
        20429,
        "Too Many Requests - slow down (HTTP 429)",
    ),
    (429, b"slow down", True, 429, "rate limit reached"),
    (500, legacy_error(500, 20500, "Internal Server Error"), True, 20500, "unavailable"),
    (503, b"<html>down</html>", True, 503, "unavailable"),
    (
        401,
        legacy_error(401, 20003, "Authenticate"),
        False,
        20003,
        "refused the request: Unable to create record: Authenticate",
    ),
    (400, legacy_error(400, 21602, "Message body is required."), False, 21602, "Message body is required."),
]


@pytest.mark.parametrize(("status", "body", "retryable", "code", "words"), OTHER, ids=[f"{c[0]}-{c[3]}" for c in OTHER])
def test_rate_limits_outages_and_other_refusals(provider_app, api, status, body, retryable, code, words):
    api.reply(status, body, path=MESSAGES)
    error = provider_error(send)
    assert (error.retryable, error.code, error.opt_out) == (retryable, code, False)
    assert words in error.message


def test_a_silent_server_after_the_request_is_outcome_unknown_not_retryable(provider_app, api):
    """Spec §3, §7: Twilio got the request and may have created the message; a retry
    could text the customer twice, so the send is not retryable."""
    api.reply(hang=True, path=MESSAGES)
    error = provider_error(send)
    assert (error.retryable, error.outcome_unknown, error.code) == (False, True, "timeout")
    assert str(error).startswith("interrupted, outcome unknown [timeout]: Twilio did not answer in time")
    assert len(api.requests) == 1  # it did reach Twilio


def test_a_connection_dropped_after_the_request_is_outcome_unknown_not_retryable(provider_app, api):
    api.reply(drop=True, path=MESSAGES)
    error = provider_error(send)
    assert (error.retryable, error.outcome_unknown, error.code) == (False, True, "connection")
    assert len(api.requests) == 1


def test_connection_refused_is_retryable(make_app):
    """Nothing reached Twilio: trying again cannot send twice."""
    with make_app(TWILIO_API_BASE_URL=refused_url()).app_context():
        error = provider_error(send)
    assert (error.retryable, error.outcome_unknown, error.code) == (True, False, "connection")
    assert "could not reach Twilio" in error.message


def test_a_silent_server_is_only_transient_for_the_harmless_check(provider_app, api):
    api.reply(hang=True, path=ACCOUNT)
    [result] = check_providers(provider_app, channels=("sms",))
    assert (result["ok"], result["code"], result["transient"]) == (False, "timeout", True)


def test_missing_credentials_are_a_permanent_configuration_error(make_app, api):
    with make_app(TWILIO_AUTH_TOKEN=None).app_context():
        error = provider_error(send)
    assert (error.retryable, error.code) == (False, "config")
    assert api.requests == []


# -- end to end through a dispatch tick -------------------------------------------------


def post_order(app, event_id="evt_1", order_id="1001"):
    response = app.test_client().post("/webhooks/orders", json=order_body(event_id, order_id=order_id))
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def show(run, request_id):
    return run("requests", "show", str(request_id))[1]


def sms_campaign(clock):
    return campaign(clock, delay_days=0, channel="sms")


def test_tick_sends_an_sms_and_keeps_the_sid(provider_app, api, clock, run):
    sms_campaign(clock)
    [request_id] = post_order(provider_app)["created"]
    api.reply(201, created("SMdelivered1"), path=MESSAGES)

    assert run("dispatch")[1]["sent"] == 1
    shown = show(run, request_id)
    assert (shown["status"], shown["sms_message_id"]) == ("sent", "SMdelivered1")
    [sent] = [e for e in shown["events"] if e["type"] == "sent"]
    assert (sent["channel"], sent["provider"], sent["provider_message_id"]) == ("sms", "twilio", "SMdelivered1")
    form = api.requests[0].form()
    assert (form["To"], form["StatusCallback"]) == (PHONE, "http://testserver.local/webhooks/twilio/status")
    assert shown["link"] in form["Body"]


def test_rate_limit_then_success(provider_app, api, clock, run):
    sms_campaign(clock)
    [request_id] = post_order(provider_app)["created"]
    api.reply(429, legacy_error(429, 20429, "Too Many Requests"), path=MESSAGES)
    api.reply(201, created("SMsecond"), path=MESSAGES)
    start = clock()

    assert run("dispatch")[1]["retry_scheduled"] == 1
    shown = show(run, request_id)
    assert (shown["status"], shown["attempts"]) == ("scheduled", 1)
    assert parse(shown["next_send_at"]) == start + timedelta(seconds=300)
    assert shown["last_error"].startswith("sms: retryable [20429]: Twilio rate limit reached")
    assert [e["error_code"] for e in shown["events"] if e["type"] == "failed"] == ["20429"]

    clock.advance(seconds=300)
    assert run("dispatch")[1]["sent"] == 1
    shown = show(run, request_id)
    assert (shown["status"], shown["attempts"], shown["sms_message_id"]) == ("sent", 0, "SMsecond")


def test_outages_until_max_attempts_then_failed(provider_app, api, clock, run):
    """Spec §6: retryable answers back off, bounded by MAX_SEND_ATTEMPTS, then failed."""
    sms_campaign(clock)
    [request_id] = post_order(provider_app)["created"]
    api.reply(503, b"<html>down</html>", path=MESSAGES, times=None)

    run("dispatch")
    clock.advance(seconds=300)
    run("dispatch")
    clock.advance(seconds=600)
    assert run("dispatch")[1]["failed"] == 1
    shown = show(run, request_id)
    assert (shown["status"], shown["attempts"]) == ("failed", 3)
    assert shown["last_error"].startswith("sms: retryable [503]: Twilio is unavailable")
    codes = [e["error_code"] for e in shown["events"] if e["type"] == "failed"]
    assert codes == ["503", "503", "503", None]
    assert len(api.requests) == 3


def test_a_timeout_after_the_request_went_out_fails_at_once_and_only_a_person_sends_again(
    provider_app, api, clock, run
):
    """Spec §3, §7 (at most once): Twilio may have created the message, so the dispatcher
    never sends it again on its own; the request fails with the reason (§6) and a person's
    Retry is the explicit action that sends it again."""
    sms_campaign(clock)
    [request_id] = post_order(provider_app)["created"]
    api.reply(hang=True, path=MESSAGES)

    assert run("dispatch")[1]["failed"] == 1
    shown = show(run, request_id)
    assert (shown["status"], shown["attempts"], shown["next_send_at"]) == ("failed", 1, None)
    assert shown["last_error"].startswith("sms: interrupted, outcome unknown [timeout]: Twilio did not answer")
    failed = [e for e in shown["events"] if e["type"] == "failed"]
    assert [e["error_code"] for e in failed] == ["timeout", None]
    assert failed[-1]["detail"] == "request failed: interrupted, outcome unknown; use Retry to send again"
    clock.advance(days=2)
    run("dispatch")
    assert len(api.requests) == 1  # never re-sent on its own

    run("requests", "retry", str(request_id))
    api.reply(201, created("SMagain"), path=MESSAGES)
    assert run("dispatch")[1]["sent"] == 1
    assert len(api.requests) == 2
    assert show(run, request_id)["sms_message_id"] == "SMagain"


def test_invalid_number_fails_at_once(provider_app, api, clock, run):
    sms_campaign(clock)
    [request_id] = post_order(provider_app)["created"]
    text = f"The 'To' number {PHONE} is not a valid phone number."
    api.reply(400, legacy_error(400, 21211, text), path=MESSAGES)

    assert run("dispatch")[1]["failed"] == 1
    shown = show(run, request_id)
    assert (shown["status"], shown["attempts"], shown["next_send_at"]) == ("failed", 1, None)
    assert (
        shown["last_error"]
        == f"sms: permanent [21211]: invalid 'To' phone number: Unable to create record: {text} (HTTP 400)"
    )
    assert db.session.scalars(select(OptOut)).all() == []  # an invalid number is not an opt-out


def test_21610_opts_the_number_out_and_the_next_order_is_skipped(provider_app, api, clock, run):
    sms_campaign(clock)
    [request_id] = post_order(provider_app)["created"]
    api.reply(400, legacy_error(400, 21610, "Attempt to send to unsubscribed recipient"), path=MESSAGES)

    run("dispatch")

    [optout] = db.session.scalars(select(OptOut)).all()
    assert (optout.channel, optout.contact, optout.source) == ("sms", PHONE, "twilio_21610")
    assert optout.detail == f"request {request_id}"
    shown = show(run, request_id)
    # The customer opted out: the request is cancelled for that reason, not left "failed".
    assert shown["status"] == "cancelled"
    assert shown["last_error"].startswith("sms: permanent [21610]: the recipient unsubscribed (replied STOP)")
    types = [(e["type"], e["error_code"]) for e in shown["events"]]
    assert ("failed", "21610") in types
    [cancelled] = [e for e in shown["events"] if e["type"] == "cancelled"]
    assert cancelled["detail"] == "customer opted out (sms, twilio_21610)"
    assert db.session.get(TestimonialRequest, request_id).claimed_at is None

    answer = post_order(provider_app, event_id="evt_2", order_id="1002")
    assert answer["created"] == []
    assert [s["reason"] for s in answer["skipped"]] == ["opted out"]
    clock.advance(days=1)
    run("dispatch")
    assert len(api.requests) == 1  # nothing more went to Twilio


def test_21610_on_a_both_channel_request_keeps_the_email_going(provider_app, api, clock, run):
    campaign(clock, delay_days=0, channel="both")
    [request_id] = post_order(provider_app)["created"]
    api.reply(400, legacy_error(400, 21610, "Attempt to send to unsubscribed recipient"), path=MESSAGES)

    run("dispatch")

    shown = show(run, request_id)
    assert shown["status"] == "sent"  # the email (outbox) went out
    assert db.session.scalars(select(OptOut.channel)).all() == ["sms"]
    [email] = run("outbox", "list")[1]
    assert email["to"] == "ada@example.com"
    clock.set(shown["next_send_at"])
    assert run("dispatch")[1]["sent"] == 1  # the reminder goes by email only
    assert len(run("outbox", "list")[1]) == 2
    assert len(api.requests) == 1


# -- provider check ---------------------------------------------------------------------


def account(status="active", kind="Full"):
    return {"sid": SID, "friendly_name": "Mug Shop", "status": status, "type": kind}


def test_check_fetches_the_account(provider_app, api, run):
    api.reply(200, account(kind="Trial"), method="GET", path=ACCOUNT)
    code, results = run("providers", "check", "--channel", "sms")
    assert code == 0
    [sms] = results
    assert (sms["channel"], sms["provider"], sms["ok"]) == ("sms", "twilio", True)
    assert "account Mug Shop is active; sending from +15017122661" in sms["detail"]
    assert "trial account" in sms["detail"]
    assert "status callbacks to http://testserver.local/webhooks/twilio/status" in sms["detail"]
    assert api.requests[0].method == "GET"


@pytest.mark.parametrize(
    ("status", "body", "code", "transient", "words"),
    [
        (401, legacy_error(401, 20003, "Authenticate"), 20003, False, "rejected the account SID / auth token"),
        (404, legacy_error(404, 20404, "The requested resource was not found"), 20404, False, "not found"),
        (200, account(status="suspended"), "account-suspended", False, "is suspended; it cannot send"),
        (429, legacy_error(429, 20429, "Too Many Requests"), 20429, True, "rate limit"),
        (500, b"", 500, True, "unavailable"),
    ],
)
def test_check_reports_each_problem_and_exits_non_zero(provider_app, api, run, status, body, code, transient, words):
    api.reply(status, body, path=ACCOUNT)
    exit_code, [sms] = run("providers", "check", "--channel", "sms", ok=False)
    assert exit_code == 1
    assert (sms["ok"], sms["code"], sms["transient"]) == (False, code, transient)
    assert words in sms["detail"]


def test_check_both_channels_one_failing(provider_app, api):
    api.reply(hang=True, path=ACCOUNT, times=2)
    email, sms = check_providers(provider_app)
    assert (email["provider"], email["ok"]) == ("outbox", True)
    assert (sms["ok"], sms["code"], sms["transient"]) == (False, "timeout", True)
    result = provider_app.test_cli_runner().invoke(args=["providers", "check"])
    assert result.exit_code == 1
    assert "sms   twilio   RETRY LATER [timeout]: Twilio did not answer in time" in result.output


def test_check_without_a_sender(make_app, api):
    app = make_app(TWILIO_FROM=None)
    [sms] = check_providers(app, ("sms",))
    assert (sms["ok"], sms["code"]) == (False, "config")
    assert "TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID" in sms["detail"]
    assert api.requests == []


# -- configuration ----------------------------------------------------------------------


def test_production_refuses_twilio_without_credentials(tmp_path):
    config = production_config(
        tmp_path,
        SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=None,
        TWILIO_FROM=None,
        TWILIO_MESSAGING_SERVICE_SID=None,
    )
    with pytest.raises(RuntimeError) as caught:
        create_app(config)
    assert "SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in str(caught.value)
    assert "SMS_PROVIDER=twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID" in str(caught.value)


def test_twilio_configuration_problems():
    fine = {
        "EMAIL_PROVIDER": "outbox",
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_MESSAGING_SERVICE_SID": "MG1",
    }
    assert provider_config_problems(fine) == []
    assert provider_config_problems({**fine, "EMAIL_PROVIDER": "twilio"}) == [
        "EMAIL_PROVIDER='twilio' is not a known email provider (outbox, sendgrid)"
    ]
