"""Failure sentences (app/lifecycle/failures.py), cancel reasons, names and next steps (pure).

Every failure is built with the code that records it: the providers' own classification
of what their SDKs raise (Twilio and SendGrid errors), the dispatcher's errors (outbox,
template, interrupted) and the webhook parsers (delivery reports). The sentences read
only the stored fields, never a message's wording.
"""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from python_http_client.exceptions import HTTPError
from twilio.base.exceptions import TwilioRestException

from app.events.parsing import parse_sendgrid_event, parse_twilio_status
from app.lifecycle import failures as explain
from app.lifecycle.cancellations import explain_cancel
from app.lifecycle.next_step import next_step
from app.lifecycle.results import INTERRUPTED_MESSAGE
from app.providers import base, sendgrid, twilio
from app.providers.base import Failure, ProviderError


def sent_error(message, *, retryable, code=None, kind=None, channel="email", provider="outbox"):
    """A failure as the dispatcher's own code raises it (outbox, templates, internal)."""
    return ProviderError(message, retryable=retryable, code=code, kind=kind).failure(channel, provider)


def twilio_error(status, code, text="x"):
    exc = TwilioRestException(status, "https://api.twilio.com/Messages.json", msg=text, code=code, method="POST")
    return twilio.classify(exc, sending=True).failure("sms", "twilio")


def sendgrid_error(status, text="x"):
    exc = HTTPError(status, "reason", f'{{"errors": [{{"message": "{text}"}}]}}'.encode(), {})
    return sendgrid.classify(exc, "send").failure("email", "sendgrid")


def outcome_unknown(channel="email"):
    return ProviderError("no answer in time", retryable=False, code="timeout", outcome_unknown=True).failure(
        channel, "sendgrid"
    )


def report(event):
    """A delivery report as the webhook records it (its fields on the ``failed`` event)."""
    return Failure(
        channel=event.channel,
        provider=event.provider,
        code=event.error_code,
        retryable=False,
        message=event.detail,
        kind=event.error_kind,
        reported=True,
    )


def sendgrid_report(**fields):
    return report(parse_sendgrid_event({"timestamp": 1795000000, "sg_event_id": "e1", **fields}))


def twilio_report(status, code=None):
    return report(
        parse_twilio_status({"MessageSid": "SM1", "MessageStatus": status, **({"ErrorCode": code} if code else {})})
    )


UNAVAILABLE = sent_error(
    "provider unavailable (simulated transient failure)", retryable=True, code="outbox-unavailable"
)
REJECTED = sent_error(
    "recipient x@fail.test rejected (simulated permanent failure)",
    retryable=False,
    code="outbox-rejected",
    kind=base.ADDRESS,
)
INTERRUPTED = Failure("email", "outbox", "interrupted", False, INTERRUPTED_MESSAGE, base.INTERRUPTED)

# (failure, kind, words the plain text must hold)
CASES = [
    (UNAVAILABLE, explain.UNAVAILABLE, "the provider was unavailable"),
    (sendgrid_error(503, "try later"), explain.UNAVAILABLE, "the provider was unavailable"),
    (twilio_error(500, 20500), explain.UNAVAILABLE, "unavailable"),
    (sent_error("unexpected provider error", retryable=True), explain.UNAVAILABLE, "unavailable"),
    (sendgrid_error(429, "too many"), explain.RATE_LIMITED, "sending limit"),
    (twilio_error(429, 20429), explain.RATE_LIMITED, "sending limit"),
    (REJECTED, explain.ADDRESS, "the address was rejected permanently"),
    (twilio_error(400, 21211), explain.ADDRESS, "the number is not valid"),
    (twilio_error(400, 21614), explain.ADDRESS, "not a mobile number"),
    (twilio_error(400, 21612), explain.ADDRESS, "cannot receive texts"),
    (twilio_error(400, 21610), explain.OPTED_OUT, "replied STOP"),
    (twilio_error(400, 21408), explain.SETUP, "not enabled on your Twilio account"),
    (twilio_error(400, 21606), explain.SETUP, "'From' number"),
    (twilio_error(401, 20003), explain.SETUP, "account credentials"),
    (
        sent_error(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set", retryable=False, code="config", kind=base.SETUP
        ),
        explain.SETUP,
        "TWILIO_ACCOUNT_SID",
    ),
    (sendgrid_error(401, "bad key"), explain.SETUP, "API key"),
    (sendgrid_error(403), explain.SETUP, "unverified sender"),
    (sendgrid_error(413), explain.SETUP, "too large"),
    (sendgrid_error(400, "bad field"), explain.REFUSED, "refused the message permanently"),
    (twilio_error(400, 21000), explain.REFUSED, "refused the message permanently"),
    (
        sent_error("unknown variable 'nme'", retryable=False, code="template", kind=base.TEMPLATE),
        explain.TEMPLATE,
        "unknown variable 'nme'",
    ),
    (
        sent_error("the campaign has no sms reminder template", retryable=False, code="template", kind=base.TEMPLATE),
        explain.TEMPLATE,
        "no sms reminder template",
    ),
    (INTERRUPTED, explain.INTERRUPTED, "interrupted"),
    (outcome_unknown(), explain.INTERRUPTED, "interrupted"),
    (
        sendgrid_report(event="bounce", type="bounce", reason="550 no such user", status="5.1.1"),
        explain.ADDRESS,
        "does not exist",
    ),
    (
        sendgrid_report(event="bounce", type="blocked", reason="blocked by policy", status="5.7.1"),
        explain.UNDELIVERED,
        "blocked",
    ),
    (sendgrid_report(event="dropped", reason="Bounced Address"), explain.ADDRESS, "bounced before"),
    (sendgrid_report(event="dropped", reason="Unsubscribed Address"), explain.OPTED_OUT, "unsubscribed"),
    (sendgrid_report(event="dropped", reason="Spam Reporting Address"), explain.OPTED_OUT, "spam"),
    (sendgrid_report(event="dropped", reason="Something else"), explain.UNDELIVERED, "not delivered"),
    (twilio_report("undelivered", "30003"), explain.UNDELIVERED, "unreachable"),
    (twilio_report("undelivered", "30004"), explain.UNDELIVERED, "blocked"),
    (twilio_report("failed", "30005"), explain.ADDRESS, "does not exist"),
    (twilio_report("undelivered", "30006"), explain.ADDRESS, "landline"),
    (twilio_report("undelivered", "30007"), explain.UNDELIVERED, "spam"),
    (twilio_report("undelivered", "30008"), explain.UNDELIVERED, "unknown error"),
    (twilio_report("failed", "30034"), explain.SETUP, "10DLC"),
    (twilio_report("undelivered", "21610"), explain.OPTED_OUT, "replied STOP"),
    (twilio_report("failed"), explain.UNDELIVERED, "not delivered"),
    (Failure("email", None, None, False, "something nobody planned for", base.UNKNOWN), base.UNKNOWN, "nobody planned"),
]


@pytest.mark.parametrize(("failure", "kind", "words"), CASES)
def test_every_recorded_failure_gets_its_kind_and_plain_words(failure, kind, words):
    result = explain.explain(failure, status="failed", attempts=3)
    assert result.kind == kind
    assert words in result.text
    assert result.text.startswith("Email: " if failure.channel == "email" else "SMS: ")
    assert "retryable" not in result.text and "permanent [" not in result.text
    assert result.permanent == (kind in explain.PERMANENT_KINDS)
    assert result.fix_contact == (kind == explain.ADDRESS)
    if kind not in (explain.OPTED_OUT,):
        assert "Retry" in result.text  # a failed request always says what to do


def test_a_transient_failure_reads_differently_by_status():
    gave_up = explain.explain(UNAVAILABLE, status="failed", attempts=3)
    assert gave_up.text == "Email: the provider was unavailable; gave up after 3 attempts — Retry to send again"
    retrying = explain.explain(UNAVAILABLE, status="scheduled", attempts=1, retrying=True)
    assert retrying.text == "Email: the provider was unavailable; trying again automatically"
    other_channel_went = explain.explain(UNAVAILABLE, status="sent")
    assert "went out by SMS only" in other_channel_went.text and "Retry" not in other_channel_went.text


def test_a_rejected_address_says_to_correct_it_until_it_was_corrected():
    rejected = explain.explain(REJECTED, status="failed", attempts=1)
    assert rejected.text == "Email: the address was rejected permanently — correct the email address, then Retry"
    assert rejected.fix_contact and rejected.permanent
    corrected = explain.explain(REJECTED, status="failed", contact_changed=True)
    assert not corrected.fix_contact and "corrected since: Retry" in corrected.text
    sms_rejected = sent_error(
        "recipient +15550009999 rejected", retryable=False, code="outbox-rejected", kind=base.ADDRESS, channel="sms"
    )
    on_sms = explain.explain(sms_rejected, status="sent")
    assert on_sms.text == (
        "SMS: the number was rejected permanently — correct the phone number so later reminders reach the customer"
    )
    assert explain.explain(REJECTED, status="cancelled").text == "Email: the address was rejected permanently"


def test_raw_text_is_the_technical_line_from_the_fields_with_phones_masked():
    raw = sent_error(
        "recipient +15550009999 rejected (simulated permanent failure)",
        retryable=False,
        code="outbox-rejected",
        kind=base.ADDRESS,
        channel="sms",
    )
    result = explain.explain(raw, status="failed")
    assert result.raw == "permanent [outbox-rejected]: recipient +1•••••9999 rejected (simulated permanent failure)"
    assert explain.explain(REJECTED, status="failed").raw == (  # e-mails stay readable
        "permanent [outbox-rejected]: recipient x@fail.test rejected (simulated permanent failure)"
    )
    reported = explain.explain(twilio_report("undelivered", "30003"), status="failed")
    assert reported.raw == (
        "undelivered [30003]: the phone was unreachable (switched off or out of coverage) (reported by twilio)"
    )
    assert reported.text.endswith("(reported by Twilio) — Retry to send again, or correct the contact details first")


def test_explain_failures_keeps_the_order_of_the_channels():
    kinds = [e.kind for e in explain.explain_failures([REJECTED, UNAVAILABLE], status="failed")]
    assert kinds == [explain.ADDRESS, explain.UNAVAILABLE]


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("customer opted out (email, link)", "Cancelled: the customer opted out of email with the unsubscribe link."),
        ("customer opted out (sms, sms_stop)", "Cancelled: the customer opted out of text messages by replying STOP."),
        (
            "customer opted out (sms, twilio_21610)",
            "Cancelled: the customer opted out of text messages by replying STOP.",
        ),
        (
            "customer opted out (email, sendgrid_spamreport)",
            "Cancelled: the customer opted out of email by reporting an email as spam.",
        ),
        (
            "customer opted out (email, merchant)",
            "Cancelled: the customer opted out of email (added to the opt-out list by you).",
        ),
        ("customer opted out", "Cancelled: the customer has opted out of every channel this request uses."),
        ("order cancelled (event evt_1)", "Cancelled: the order was cancelled."),
        ("order refunded (event evt_2)", "Cancelled: the order was refunded."),
        ("campaign 3 archived", "Cancelled: the campaign was archived."),
        ("cancelled by ada@shop.example from the Requests Log", "Cancelled by ada@shop.example from the Requests Log."),
        ("customer called +15551234567", "Cancelled: customer called +1•••••4567."),
        (None, "Cancelled (no reason recorded)."),
    ],
)
def test_cancellation_reasons(detail, expected):
    assert explain_cancel(detail) == expected


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def request(status, **fields):
    values = {
        "next_send_at": None,
        "next_slot": 0,
        "attempts": 0,
        "expires_at": None,
        "submitted_at": None,
        "cancelled_at": None,
    }
    return SimpleNamespace(status=status, **{**values, **fields})


@pytest.mark.parametrize(
    ("req", "options", "expected"),
    [
        (request("scheduled", next_send_at=at("2026-11-24T10:00")), {}, "sends 2026-11-24 10:00"),
        (
            request("scheduled", next_send_at=at("2026-11-24T10:00")),
            {"campaign_status": "paused"},
            "on hold: campaign paused (was due 2026-11-24 10:00)",
        ),
        (
            request("scheduled", next_send_at=at("2026-11-24T10:00"), attempts=1),
            {"max_attempts": 3},
            "first message: new try 2026-11-24 10:00 (try 2 of 3)",
        ),
        (request("queued"), {}, "sending now"),
        (request("sent", next_send_at=at("2026-11-28T10:00"), next_slot=1), {}, "reminder 1 on 2026-11-28 10:00"),
        (request("clicked", next_send_at=at("2026-12-02T10:00"), next_slot=2), {}, "reminder 2 on 2026-12-02 10:00"),
        (request("sent", expires_at=at("2026-12-20T10:00")), {}, "no more reminders; link open until 2026-12-20 10:00"),
        (request("sent", next_send_at=at("2026-11-28T10:00"), next_slot=0), {}, "first message again 2026-11-28 10:00"),
        (request("failed"), {}, "needs your action"),
        (request("submitted", submitted_at=at("2026-11-25T09:30")), {}, "done: testimonial received 2026-11-25 09:30"),
        (request("expired", expires_at=at("2026-11-25T09:30")), {}, "ended: no testimonial by 2026-11-25 09:30"),
        (request("cancelled", cancelled_at=at("2025-11-25T09:30")), {}, "stopped 2025-11-25 09:30"),
    ],
)
def test_next_step_says_what_happens_next(req, options, expected):
    assert next_step(req, **options) == expected


def test_a_contact_change_after_the_failure_counts_until_the_next_failure():
    assert explain.changed_since_failure(["queued", "failed", "contact_changed"])
    assert not explain.changed_since_failure(["contact_changed", "failed"])
    assert not explain.changed_since_failure(["failed", "contact_changed", "retried", "failed"])
