"""explain.py: every failure reason the code records, in the merchant's words (pure).

The reasons are built with the same code that records them: ProviderError's text (the
dispatcher's ``failed`` events), the webhook parsers (delivery reports, with the
" (reported by …)" suffix channel_failures adds) and the dispatcher's interrupted text.
"""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from app.events.parsing import parse_sendgrid_event, parse_twilio_status
from app.lifecycle import explain
from app.lifecycle.results import INTERRUPTED
from app.providers.base import ProviderError


def sent_error(message, *, retryable, code=None):
    return str(ProviderError(message, retryable=retryable, code=code))


def sendgrid_report(**fields):
    event = parse_sendgrid_event({"timestamp": 1795000000, "sg_event_id": "e1", **fields})
    return f"{event.detail} (reported by sendgrid)"


def twilio_report(status, code=None):
    event = parse_twilio_status({"MessageSid": "SM1", "MessageStatus": status, **({"ErrorCode": code} if code else {})})
    return f"{event.detail} (reported by twilio)"


UNAVAILABLE = sent_error(
    "provider unavailable (simulated transient failure)", retryable=True, code="outbox-unavailable"
)
REJECTED = sent_error(
    "recipient x@fail.test rejected (simulated permanent failure)", retryable=False, code="outbox-rejected"
)

# (reason, channel, kind, words the plain text must hold)
CASES = [
    (UNAVAILABLE, "email", explain.UNAVAILABLE, "the provider was unavailable"),
    (
        sent_error("SendGrid is unavailable (503): try later", retryable=True, code=503),
        "email",
        explain.UNAVAILABLE,
        "the provider was unavailable",
    ),
    (
        sent_error("SendGrid did not answer in time (timeout)", retryable=True, code="timeout"),
        "email",
        explain.UNAVAILABLE,
        "unavailable",
    ),
    (
        sent_error("could not reach Twilio: refused", retryable=True, code="connection"),
        "sms",
        explain.UNAVAILABLE,
        "unavailable",
    ),
    (
        sent_error("network error talking to Twilio: reset", retryable=True, code="network"),
        "sms",
        explain.UNAVAILABLE,
        "unavailable",
    ),
    (sent_error("unexpected provider error: KeyError('x')", retryable=True), "sms", explain.UNAVAILABLE, "unavailable"),
    (
        sent_error("SendGrid rate limit reached (429): too many", retryable=True, code=429),
        "email",
        explain.RATE_LIMITED,
        "sending limit",
    ),
    (
        sent_error("Twilio rate limit reached: slow down", retryable=True, code=20429),
        "sms",
        explain.RATE_LIMITED,
        "sending limit",
    ),
    (REJECTED, "email", explain.ADDRESS, "the address was rejected permanently"),
    (
        sent_error("invalid 'To' phone number: bad", retryable=False, code=21211),
        "sms",
        explain.ADDRESS,
        "the number is not valid",
    ),
    (
        sent_error("the 'To' number is not a mobile number: x", retryable=False, code=21614),
        "sms",
        explain.ADDRESS,
        "not a mobile number",
    ),
    (
        sent_error("Twilio cannot route a message to this number: x", retryable=False, code=21612),
        "sms",
        explain.ADDRESS,
        "cannot receive texts",
    ),
    (
        sent_error("the recipient unsubscribed (replied STOP): x", retryable=False, code=21610),
        "sms",
        explain.OPTED_OUT,
        "replied STOP",
    ),
    (
        sent_error("sending to this region is not enabled on the Twilio account: x", retryable=False, code=21408),
        "sms",
        explain.SETUP,
        "not enabled on your Twilio account",
    ),
    (
        sent_error("the 'From' number cannot send this message: x", retryable=False, code=21606),
        "sms",
        explain.SETUP,
        "'From' number",
    ),
    (
        sent_error("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set", retryable=False, code="config"),
        "sms",
        explain.SETUP,
        "TWILIO_ACCOUNT_SID",
    ),
    (
        sent_error("SendGrid rejected the API key (401): bad key", retryable=False, code=401),
        "email",
        explain.SETUP,
        "API key",
    ),
    (
        sent_error(
            "SendGrid refused the message (unverified sender or missing permission) (403): x", retryable=False, code=403
        ),
        "email",
        explain.SETUP,
        "unverified sender",
    ),
    (
        sent_error("the message is too large for SendGrid (413): x", retryable=False, code=413),
        "email",
        explain.SETUP,
        "too large",
    ),
    (
        sent_error("SendGrid refused the message (400): bad field", retryable=False, code=400),
        "email",
        explain.REFUSED,
        "refused the message permanently",
    ),
    (
        sent_error("Twilio refused the request: x", retryable=False, code=21000),
        "sms",
        explain.REFUSED,
        "refused the message permanently",
    ),
    (
        sent_error("template error: unknown variable 'nme'", retryable=False, code="template"),
        "email",
        explain.TEMPLATE,
        "unknown variable 'nme'",
    ),
    (
        sent_error("template error: the campaign has no sms reminder template", retryable=False, code="template"),
        "sms",
        explain.TEMPLATE,
        "no sms reminder template",
    ),
    (
        f"{INTERRUPTED}: the sending process stopped before the provider's answer was recorded "
        "(claimed at 2026-11-20 12:00:00 UTC)",
        "email",
        explain.INTERRUPTED,
        "interrupted",
    ),
    (
        sendgrid_report(event="bounce", type="bounce", reason="550 no such user", status="5.1.1"),
        "email",
        explain.ADDRESS,
        "does not exist",
    ),
    (
        sendgrid_report(event="bounce", type="blocked", reason="blocked by policy", status="5.7.1"),
        "email",
        explain.UNDELIVERED,
        "blocked",
    ),
    (sendgrid_report(event="dropped", reason="Bounced Address"), "email", explain.ADDRESS, "bounced before"),
    (sendgrid_report(event="dropped", reason="Unsubscribed Address"), "email", explain.OPTED_OUT, "unsubscribed"),
    (sendgrid_report(event="dropped", reason="Spam Reporting Address"), "email", explain.OPTED_OUT, "spam"),
    (sendgrid_report(event="dropped", reason="Something else"), "email", explain.UNDELIVERED, "not delivered"),
    (twilio_report("undelivered", "30003"), "sms", explain.UNDELIVERED, "unreachable"),
    (twilio_report("undelivered", "30004"), "sms", explain.UNDELIVERED, "blocked"),
    (twilio_report("failed", "30005"), "sms", explain.ADDRESS, "does not exist"),
    (twilio_report("undelivered", "30006"), "sms", explain.ADDRESS, "landline"),
    (twilio_report("undelivered", "30007"), "sms", explain.UNDELIVERED, "spam"),
    (twilio_report("undelivered", "30008"), "sms", explain.UNDELIVERED, "unknown error"),
    (twilio_report("failed", "30034"), "sms", explain.SETUP, "10DLC"),
    (twilio_report("undelivered", "21610"), "sms", explain.OPTED_OUT, "replied STOP"),
    (twilio_report("failed"), "sms", explain.UNDELIVERED, "not delivered"),
    ("something nobody planned for", "email", explain.UNKNOWN, "something nobody planned for"),
]


@pytest.mark.parametrize(("reason", "channel", "kind", "words"), CASES)
def test_every_recorded_reason_gets_a_kind_and_plain_words(reason, channel, kind, words):
    result = explain.explain(channel, reason, status="failed", attempts=3)
    assert result.kind == kind
    assert words in result.text
    assert result.text.startswith("Email: " if channel == "email" else "SMS: ")
    assert "retryable" not in result.text and "permanent [" not in result.text
    assert result.permanent == (kind in explain.PERMANENT_KINDS)
    assert result.fix_contact == (kind == explain.ADDRESS)
    if kind not in (explain.OPTED_OUT,):
        assert "Retry" in result.text  # a failed request always says what to do


def test_a_transient_failure_reads_differently_by_status():
    gave_up = explain.explain("email", UNAVAILABLE, status="failed", attempts=3)
    assert gave_up.text == "Email: the provider was unavailable; gave up after 3 attempts — Retry to send again"
    retrying = explain.explain("email", UNAVAILABLE, status="scheduled", attempts=1, retrying=True)
    assert retrying.text == "Email: the provider was unavailable; trying again automatically"
    other_channel_went = explain.explain("email", UNAVAILABLE, status="sent")
    assert "went out by SMS only" in other_channel_went.text and "Retry" not in other_channel_went.text


def test_a_rejected_address_says_to_correct_it_until_it_was_corrected():
    rejected = explain.explain("email", REJECTED, status="failed", attempts=1)
    assert rejected.text == "Email: the address was rejected permanently — correct the email address, then Retry"
    assert rejected.fix_contact and rejected.permanent
    corrected = explain.explain("email", REJECTED, status="failed", contact_changed=True)
    assert not corrected.fix_contact and "corrected since: Retry" in corrected.text
    on_sms = explain.explain(
        "sms", sent_error("recipient +15550009999 rejected", retryable=False, code="outbox-rejected"), status="sent"
    )
    assert on_sms.text == (
        "SMS: the number was rejected permanently — correct the phone number so later reminders reach the customer"
    )
    assert explain.explain("email", REJECTED, status="cancelled").text == "Email: the address was rejected permanently"


def test_raw_text_keeps_emails_and_masks_phones():
    raw = sent_error(
        "recipient +15550009999 rejected (simulated permanent failure)", retryable=False, code="outbox-rejected"
    )
    result = explain.explain("sms", raw, status="failed")
    assert "+15550009999" not in result.raw and "+1•••••9999" in result.raw
    assert explain.explain("email", REJECTED, status="failed").raw == REJECTED  # e-mails stay readable


def test_last_error_splits_per_channel():
    text = f"email: {REJECTED} · sms: {UNAVAILABLE}"
    assert explain.split_last_error(text) == [("email", REJECTED), ("sms", UNAVAILABLE)]
    assert explain.split_last_error("email: a · b") == [("email", "a · b")]
    assert explain.split_last_error(None) == []
    kinds = [e.kind for e in explain.explain_failures(explain.split_last_error(text), status="failed")]
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
    assert explain.explain_cancel(detail) == expected


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
        (request("cancelled", cancelled_at=at("2025-11-25T09:30")), {"this_year": 2026}, "stopped 2025-11-25 09:30"),
    ],
)
def test_next_step_says_what_happens_next(req, options, expected):
    assert explain.next_step(req, **options) == expected


def test_a_contact_change_after_the_failure_counts_until_the_next_failure():
    assert explain.changed_since_failure(["queued", "failed", "contact_changed"])
    assert not explain.changed_since_failure(["contact_changed", "failed"])
    assert not explain.changed_since_failure(["failed", "contact_changed", "retried", "failed"])
