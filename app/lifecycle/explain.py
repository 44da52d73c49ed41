"""What a request's error or cancellation means, in the merchant's words (pure functions).

The dispatcher and the provider webhooks record failures as provider text
(``permanent [outbox-rejected]: recipient … rejected``, ``bounce (bounce): 550 …
(reported by sendgrid)``, ``undelivered [30005]: …``). This module is the one place that
turns such a reason into what happened and what the merchant can do about it, taking
the request's state into account (a "retryable" error on a request that already gave up
is not retried any more). The raw text stays available beside it (tooltip, detail page,
CSV).

Everything here is pure: strings and numbers in, strings out; no database, no clock.
"""

import re
from dataclasses import dataclass

from app.campaigns.models import CHANNEL_NAMES
from app.settings.dates import DATETIME_FORMAT, to_shop_time

# -- the kinds of failure -------------------------------------------------------------------

UNAVAILABLE = "unavailable"  # outage, timeout, network: trying again later usually works
RATE_LIMITED = "rate_limited"
ADDRESS = "address"  # this email address / phone number cannot receive: correct it
OPTED_OUT = "opted_out"
TEMPLATE = "template"
SETUP = "setup"  # our provider account or settings: fix the settings
UNDELIVERED = "undelivered"  # accepted, then the receiving side did not deliver it
REFUSED = "refused"  # refused for good, cause not more specific
INTERRUPTED = "interrupted"
UNKNOWN = "unknown"

# Kinds for which pressing Retry alone sends to the same place and fails the same way.
PERMANENT_KINDS = frozenset({ADDRESS, OPTED_OUT, TEMPLATE, SETUP, REFUSED})

SEND_RESULT = re.compile(r"^(?P<kind>retryable|permanent)(?: \[(?P<code>[^\]]*)\])?: (?P<message>.*)$", re.S)
REPORTED = re.compile(r"^(?P<detail>.*) \(reported by (?P<provider>[\w-]+)\)$", re.S)
TWILIO_REPORT = re.compile(r"^(?P<status>undelivered|failed)(?: \[(?P<code>\w+)\])?(?::\s*(?P<message>.*))?$", re.S)
SENDGRID_REPORT = re.compile(r"^(?P<event>bounce|dropped)(?: \((?P<type>[\w-]+)\))?:\s*(?P<message>.*)$", re.S)
PHONE = re.compile(r"\+[1-9]\d{6,14}\b")

# Twilio send-time error codes (app/providers/twilio.py PERMANENT_CODES).
TWILIO_ADDRESS_CODES = {
    "21211": "the number is not valid",
    "21612": "the number cannot receive texts",
    "21614": "the number is not a mobile number",
}
TWILIO_SETUP_CODES = {
    "21408": "sending to this country is not enabled on your Twilio account",
    "21606": "your Twilio 'From' number cannot send this message",
    "20003": "Twilio rejected your account credentials",
}
# Twilio delivery-report codes (app/events/parsing.py TWILIO_ERRORS).
TWILIO_REPORT_CODES = {
    "30003": (UNDELIVERED, "the phone was unreachable (switched off or out of coverage)"),
    "30004": (UNDELIVERED, "the number blocked the message"),
    "30005": (ADDRESS, "the number does not exist"),
    "30006": (ADDRESS, "the number is a landline or its carrier cannot be reached"),
    "30007": (UNDELIVERED, "the carrier filtered the message as spam"),
    "30008": (UNDELIVERED, "the carrier reported an unknown error"),
    "30034": (SETUP, "your sender number is not registered for A2P 10DLC"),
    "21610": (OPTED_OUT, "the customer replied STOP"),
}
SENDGRID_SETUP_CODES = {
    "401": "SendGrid rejected the API key",
    "403": "SendGrid refused the sender (unverified sender or missing permission)",
    "413": "the message is too large for SendGrid",
    "scope": "the SendGrid API key may not send mail",
}


@dataclass(frozen=True)
class Failure:
    """One reason, read: its kind, the provider's code and text, who reported it."""

    kind: str
    code: str | None
    message: str
    retryable: bool
    reported_by: str | None = None  # a provider's delivery report (after it accepted the message)
    why: str | None = None  # a more precise cause, in plain words, when one is known


@dataclass(frozen=True)
class Explanation:
    channel: str | None
    kind: str
    text: str  # the plain sentence: "Email: …; … — what to do"
    raw: str  # the recorded reason, phone numbers masked
    permanent: bool  # Retry alone would fail the same way
    fix_contact: bool  # correcting the email address / phone number is the way out


def read_reason(reason):
    """A recorded failure reason → Failure (never raises; unknown text is UNKNOWN)."""
    reason = (reason or "").strip()
    reported = REPORTED.match(reason)
    if reported:
        return _read_report(reported["detail"].strip(), reported["provider"])
    if reason.startswith("interrupted, outcome unknown"):
        return Failure(INTERRUPTED, "interrupted", reason, retryable=False)
    result = SEND_RESULT.match(reason)
    if result is None:
        return Failure(UNKNOWN, None, reason, retryable=False)
    code, message = result["code"], result["message"].strip()
    retryable = result["kind"] == "retryable"
    lowered = message.lower()
    if code == "template" or message.startswith("template error"):
        why = message.split("template error:", 1)[-1].strip() or None
        return Failure(TEMPLATE, code, message, retryable=False, why=why)
    if code in ("429", "20429") or "rate limit" in lowered:
        return Failure(RATE_LIMITED, code, message, retryable=True)
    if retryable:
        return Failure(UNAVAILABLE, code, message, retryable=True)
    if code == "21610" or "unsubscribed" in lowered:
        return Failure(OPTED_OUT, code, message, retryable=False, why="the customer replied STOP")
    if code in TWILIO_ADDRESS_CODES:
        return Failure(ADDRESS, code, message, retryable=False, why=TWILIO_ADDRESS_CODES[code])
    if code == "outbox-rejected" or "invalid 'to'" in lowered:
        return Failure(ADDRESS, code, message, retryable=False)
    if code in TWILIO_SETUP_CODES:
        return Failure(SETUP, code, message, retryable=False, why=TWILIO_SETUP_CODES[code])
    if code in SENDGRID_SETUP_CODES:
        return Failure(SETUP, code, message, retryable=False, why=SENDGRID_SETUP_CODES[code])
    if code == "config" or (code or "").startswith("account-"):
        return Failure(SETUP, code, message, retryable=False, why=message)
    return Failure(REFUSED, code, message, retryable=False)


def _read_report(detail, provider):
    twilio = TWILIO_REPORT.match(detail)
    if twilio:
        code = twilio["code"]
        kind, why = TWILIO_REPORT_CODES.get(code or "", (UNDELIVERED, None))
        return Failure(kind, code, detail, retryable=False, reported_by=provider, why=why)
    sendgrid = SENDGRID_REPORT.match(detail)
    if sendgrid:
        event, bounce_type, message = sendgrid["event"], sendgrid["type"], sendgrid["message"].strip()
        lowered = message.lower()
        if event == "dropped":
            if "unsubscribe" in lowered or "spam" in lowered:
                return Failure(
                    OPTED_OUT,
                    event,
                    detail,
                    retryable=False,
                    reported_by=provider,
                    why="the customer unsubscribed or reported an earlier email as spam",
                )
            if "bounce" in lowered or "invalid" in lowered:
                return Failure(
                    ADDRESS,
                    event,
                    detail,
                    retryable=False,
                    reported_by=provider,
                    why="SendGrid will not send to an address that bounced before",
                )
            return Failure(UNDELIVERED, event, detail, retryable=False, reported_by=provider)
        if bounce_type == "blocked":
            return Failure(
                UNDELIVERED,
                bounce_type,
                detail,
                retryable=False,
                reported_by=provider,
                why="the receiving mail server blocked it",
            )
        return Failure(
            ADDRESS,
            bounce_type or event,
            detail,
            retryable=False,
            reported_by=provider,
            why="the receiving mail server says the address does not exist",
        )
    return Failure(UNDELIVERED, None, detail, retryable=False, reported_by=provider)


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def explain(channel, reason, *, status, attempts=0, retrying=False, contact_changed=False):
    """One channel's failure in plain words, with what to do given the request's status.

    ``attempts``: tries of the failed message so far (the request's ``attempts``);
    ``retrying``: the dispatcher will try again on its own; ``contact_changed``: the
    merchant corrected the contact details after the failure.
    """
    failure = read_reason(reason)
    name = CHANNEL_NAMES.get(channel, (channel or "Message").capitalize())
    address = "number" if channel == "sms" else "address"
    what, advice = _what_and_advice(failure, channel, address, status, attempts, retrying, contact_changed)
    text = f"{name}: {what}" + (f" — {advice}" if advice else "")
    return Explanation(
        channel=channel,
        kind=failure.kind,
        text=text,
        raw=mask_phones(reason or ""),
        permanent=failure.kind in PERMANENT_KINDS,
        fix_contact=failure.kind == ADDRESS and not contact_changed,
    )


def _what_and_advice(failure, channel, address, status, attempts, retrying, contact_changed):
    failed = status == "failed"
    finished = status in ("submitted", "expired", "cancelled")
    kind = failure.kind
    contact = "phone number" if channel == "sms" else "email address"
    after = f" (reported by {failure.reported_by.capitalize()})" if failure.reported_by else ""

    if kind in (UNAVAILABLE, RATE_LIMITED):
        what = "the provider's sending limit was reached" if kind == RATE_LIMITED else "the provider was unavailable"
        if retrying:
            return f"{what}; trying again automatically", None
        if failed:
            tries = f"; gave up after {_plural(attempts, 'attempt')}" if attempts > 1 else "; gave up"
            return what + tries, "Retry to send again"
        other = {"email": "SMS", "sms": "email"}.get(channel)
        return what + (
            f"; this message went out by {other} only"
            if other and not finished
            else "; this message was not sent on this channel"
        ), None
    if kind == INTERRUPTED:
        what = "sending was interrupted, so it is unknown whether the message arrived"
        return what, ("Retry sends it again (the customer may get it twice)" if failed else None)
    if kind == TEMPLATE:
        what = "the message template could not be filled in" + (f" ({failure.why})" if failure.why else "")
        return what, (
            "fix the campaign's template, then Retry" if failed else None if finished else "fix the campaign's template"
        )
    if kind == SETUP:
        what = f"the provider refused your account settings: {failure.why or failure.message}"
        return what, (
            "fix the provider settings, then Retry" if failed else None if finished else "fix the provider settings"
        )
    if kind == OPTED_OUT:
        what = (failure.why or "the customer opted out") + after
        return what, (None if finished else f"no more messages go to this {contact}")
    if kind == ADDRESS:
        what = f"the {address} was rejected permanently" + (f" ({failure.why})" if failure.why else "") + after
        if contact_changed:
            return what, (
                "the contact details were corrected since: Retry to send to the new one"
                if failed
                else None
                if finished
                else "the contact details were corrected since"
            )
        if finished:
            return what, None
        return what, (
            f"correct the {contact}, then Retry"
            if failed
            else f"correct the {contact} so later reminders reach the customer"
        )
    if kind == UNDELIVERED:
        what = "the message was not delivered" + (f": {failure.why}" if failure.why else "") + after
        return what, ("Retry to send again, or correct the contact details first" if failed else None)
    if kind == REFUSED:
        what = "the provider refused the message permanently" + after
        return what, (f"check the {contact} and the template, then Retry" if failed else None)
    what = f"the message failed ({failure.message or 'no reason recorded'})"
    return what, ("Retry to send again" if failed else None)


def split_last_error(last_error):
    """``"email: … · sms: …"`` (see states.describe_failures) → [(channel, reason)]."""
    if not last_error:
        return []
    pieces = []
    for part in last_error.split(" · "):
        channel, sep, reason = part.partition(": ")
        if sep and channel in ("email", "sms"):
            pieces.append((channel, reason))
        elif pieces:  # a reason that itself contained " · "
            pieces[-1] = (pieces[-1][0], f"{pieces[-1][1]} · {part}")
        else:
            pieces.append((None, part))
    return pieces


def explain_failures(failures, *, status, attempts=0, retrying=False, contact_changed=False):
    """``{channel: reason}`` or ``[(channel, reason)]`` → [Explanation], in that order."""
    items = failures.items() if isinstance(failures, dict) else failures
    return [
        explain(channel, reason, status=status, attempts=attempts, retrying=retrying, contact_changed=contact_changed)
        for channel, reason in items
    ]


# -- cancellations ----------------------------------------------------------------------------

OPT_OUT_SOURCES = {
    "link": "with the unsubscribe link",
    "sms_stop": "by replying STOP",
    "sendgrid_unsubscribe": "from the email's unsubscribe link",
    "sendgrid_group_unsubscribe": "from the email's unsubscribe link",
    "sendgrid_spamreport": "by reporting an email as spam",
    "twilio_21610": "by replying STOP",
    "merchant": "(added to the opt-out list by you)",
}
OPTED_OUT_REASON = re.compile(r"^customer opted out \((?P<channel>email|sms), (?P<source>[^)]*)\)$")
ORDER_REASON = re.compile(r"^order (?P<what>cancelled|refunded)(?: \(event (?P<event>.*)\))?$")
CAMPAIGN_REASON = re.compile(r"^campaign \d+ archived$")
BY_MERCHANT = re.compile(r"^cancelled by (?P<who>.+) from the Requests Log$")


def explain_cancel(detail):
    """A ``cancelled`` event's detail → the reason in plain words."""
    detail = (detail or "").strip()
    if not detail:
        return "Cancelled (no reason recorded)."
    opted = OPTED_OUT_REASON.match(detail)
    if opted:
        channel = "email" if opted["channel"] == "email" else "text messages"
        how = OPT_OUT_SOURCES.get(opted["source"], f"(via {opted['source']})")
        return f"Cancelled: the customer opted out of {channel} {how}."
    if detail == "customer opted out":
        return "Cancelled: the customer has opted out of every channel this request uses."
    order = ORDER_REASON.match(detail)
    if order:
        return f"Cancelled: the order was {order['what']}."
    if CAMPAIGN_REASON.match(detail):
        return "Cancelled: the campaign was archived."
    merchant = BY_MERCHANT.match(detail)
    if merchant:
        return f"Cancelled by {merchant['who']} from the Requests Log."
    return f"Cancelled: {mask_phones(detail)}."


# -- masking ------------------------------------------------------------------------------------


def mask_phone(phone):
    """+15551234567 → +1•••••4567: enough to recognise, not enough to copy."""
    if not phone:
        return ""
    if len(phone) <= 6:
        return "•" * len(phone)
    return f"{phone[:2]}•••••{phone[-4:]}"


def mask_phones(text):
    """Every E.164 phone number in ``text`` masked; e-mail addresses left as they are."""
    return PHONE.sub(lambda m: mask_phone(m.group(0)), text or "")


def mask_email(email):
    """ada@example.com → a•••@example.com (for the timeline of a contact change)."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else mask_phone(email)


def changed_since_failure(event_types):
    """True when a ``contact_changed`` event follows the last ``failed`` one (events in
    time order): the failure was about the contact details as they were before."""
    changed = False
    for type_ in event_types:
        if type_ == "failed":
            changed = False
        elif type_ == "contact_changed":
            changed = True
    return changed


# -- what happens next ------------------------------------------------------------------------


def short_time(value, this_year=None):
    """``2026-11-24 10:00`` in the shop's time zone: the dashboard's one date format
    (``this_year`` is kept for callers; the full date is always shown)."""
    if value is None:
        return "—"
    return to_shop_time(value).strftime(DATETIME_FORMAT)


def message_name(slot, *, article=False):
    """Slot 0 is "the first message", as on the Campaigns and Templates screens; k is "reminder k"."""
    if slot == 0:
        return "the first message" if article else "first message"
    return f"reminder {slot}"


def next_step(req, *, campaign_status="active", max_attempts=3, this_year=None):
    """One short line: what happens next for a request in its status (the log's column).

    ``req`` is anything with the request's fields (status, next_send_at, next_slot,
    attempts, expires_at, submitted_at, cancelled_at)."""
    status = req.status
    at = req.next_send_at

    def when(value):
        return short_time(value, this_year)

    if status == "failed":
        return "needs your action"
    if status == "submitted":
        return f"done: testimonial received {when(req.submitted_at)}"
    if status == "expired":
        return f"ended: no testimonial by {when(req.expires_at)}" if req.expires_at else "ended: expired"
    if status == "cancelled":
        return f"stopped {when(req.cancelled_at)}" if req.cancelled_at else "stopped"
    if status == "queued":
        return "sending now"
    if at is None:
        if status in ("sent", "clicked"):
            return "no more reminders" + (f"; link open until {when(req.expires_at)}" if req.expires_at else "")
        return "nothing planned"
    if campaign_status == "paused":
        return f"on hold: campaign paused (was due {when(at)})"
    if campaign_status not in ("active", None):
        return f"not sent: campaign {campaign_status}"
    what = message_name(req.next_slot)
    if req.attempts:
        return f"{what}: new try {when(at)} (try {req.attempts + 1} of {max_attempts})"
    if status == "scheduled":
        return f"sends {when(at)}"
    if req.next_slot == 0:
        return f"first message again {when(at)}"
    return f"{what} on {when(at)}"
