"""Provider payloads → ``ProviderEvent``: pure functions, no database, no clock.

Each provider names things its own way; this module is the one place that knows those
names. Everything else works with our event types (spec §4):

    sent  delivered  opened  clicked  failed  delivery_deferred  opted_out  opted_in
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from app.input_guard import unstorable_text
from app.optouts.models import E164, OPTED_IN, OPTED_OUT
from app.providers import sendgrid, twilio

SENT, DELIVERED, OPENED, CLICKED, FAILED = "sent", "delivered", "opened", "clicked", "failed"
DELIVERY_DEFERRED = "delivery_deferred"
CONTACT_KINDS = (OPTED_OUT, OPTED_IN)

# SendGrid event name → our type.
SENDGRID_KINDS = {
    "processed": SENT,  # SendGrid accepted the message for delivery (a confirmation)
    "delivered": DELIVERED,
    "open": OPENED,
    "click": CLICKED,
    "bounce": FAILED,
    "dropped": FAILED,
    "deferred": DELIVERY_DEFERRED,
    "spamreport": OPTED_OUT,
    "unsubscribe": OPTED_OUT,
    "group_unsubscribe": OPTED_OUT,
    "group_resubscribe": OPTED_IN,
}
# Twilio MessageStatus → our type; the others (queued, accepted, sending, scheduled,
# canceled, receiving, received, read…) say nothing the request log needs.
TWILIO_KINDS = {"sent": SENT, "delivered": DELIVERED, "undelivered": FAILED, "failed": FAILED}

# The keywords Twilio itself acts on (it blocks or re-allows the number and answers the
# customer). Opting out is read generously, opting back in strictly.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP", "YES"}

TWILIO_OPT_OUT_CODE = str(twilio.UNSUBSCRIBED)

EARLIEST, LATEST = 946684800, 4102444800  # 2000-01-01 .. 2100-01-01: anything else is a bug
MAX_DETAIL = 500


class EventProblem(ValueError):
    """An event we cannot use (malformed, or about a request we do not have)."""


@dataclass(frozen=True)
class ProviderEvent:
    provider: str  # sendgrid | twilio
    channel: str  # email | sms
    kind: str  # one of our types above, or None: nothing to record
    raw_type: str  # the provider's own name (bounce, undelivered, STOP…)
    dedupe_key: str
    occurred_at: datetime | None  # None: the provider gives no time (Twilio): use arrival
    message_id: str | None = None  # the provider's message id (X-Message-Id / MessageSid)
    request_id: int | None = None  # from our custom args, when the provider echoes them
    slot: int | None = None
    contact: str | None = None  # the email address or phone number the event is about
    error_code: str | None = None
    detail: str | None = None  # for a failure: the provider's message
    error_kind: str | None = None  # for a failure: its kind (app.providers.base), from the provider's codes


def _text(value, limit=MAX_DETAIL):
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:limit] if text else None


def _refuse_unstorable(fields):
    """No text a database cannot store (NUL, unpaired surrogates) gets past parsing."""
    pairs = fields.items(multi=True) if hasattr(fields, "getlist") else fields.items()
    for key, value in pairs:
        field = unstorable_text({key: value}, "")
        if field is not None:
            raise EventProblem(f"field {field or key!r} contains a NUL character or an unpaired surrogate")


def _small_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**9 else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) < 10:
        return int(value.strip())
    return None


# -- SendGrid ----------------------------------------------------------------------------


def parse_sendgrid_event(raw):
    """One element of SendGrid's JSON array. Raises EventProblem when it cannot be used."""
    if not isinstance(raw, dict):
        raise EventProblem("an event must be a JSON object")
    _refuse_unstorable(raw)
    name = raw.get("event")
    if not isinstance(name, str) or not name:
        raise EventProblem("field 'event' is missing")
    timestamp = raw.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or not EARLIEST <= timestamp < LATEST:
        raise EventProblem("field 'timestamp' must be Unix seconds (an integer)")
    occurred_at = datetime.fromtimestamp(int(timestamp), UTC)
    event_id = raw.get("sg_event_id")
    if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id) <= 100):
        raise EventProblem("field 'sg_event_id' must be a string of at most 100 characters")
    sg_message_id = raw.get("sg_message_id")
    if sg_message_id is not None and not isinstance(sg_message_id, str):
        raise EventProblem("field 'sg_message_id' must be a string")
    # sg_message_id is "<X-Message-Id>.<filter suffix>": the part before the dot is ours.
    message_id = (sg_message_id or "").split(".", 1)[0][:255] or None
    email = raw.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254):
        raise EventProblem("field 'email' is not an email address")
    email = email.strip().lower() if email else None

    kind = SENDGRID_KINDS.get(name)
    request_id = _small_int(raw.get("request_id"))
    slot = _small_int(raw.get("slot"))
    if event_id:
        key = f"sendgrid:{event_id}"
    else:
        # No event id (older accounts, hand-made tests): the spec §7.3 key — request,
        # type, provider message id, one-minute window.
        key = f"sendgrid:{name}:{request_id or '-'}:{message_id or email or '-'}:{int(timestamp) // 60}"
    error_code, detail, error_kind = None, None, None
    if name in ("bounce", "dropped"):
        bounce_type = _text(raw.get("type"), 40) if isinstance(raw.get("type"), str) else None
        error_kind, error_code, detail = sendgrid.report_failure(
            name, bounce_type, _text(raw.get("reason")), _text(raw.get("status"), 40)
        )
        detail = _text(detail)
    elif name == "deferred":
        attempt = _small_int(raw.get("attempt"))
        detail = (
            f"delivery deferred by the receiving server"
            f"{f' (attempt {attempt})' if attempt else ''}: {_text(raw.get('response')) or 'no response text'}"
        )
    elif name == "delivered":
        detail = _text(raw.get("response"))
    elif name == "processed":
        detail = "SendGrid processed the message (accepted for delivery)"
    elif name == "open":
        detail = "machine open (mail privacy protection)" if raw.get("sg_machine_open") else None
    elif name == "click":
        detail = _text(raw.get("url"))
    elif kind == OPTED_OUT:
        detail = {
            "spamreport": "the customer reported the email as spam",
            "unsubscribe": "the customer unsubscribed",
            "group_unsubscribe": "the customer unsubscribed from the group",
        }[name]
        group = _small_int(raw.get("asm_group_id"))
        if group is not None:
            detail += f" (group {group})"
    elif kind == OPTED_IN:
        detail = "the customer resubscribed to the group"
    if kind in CONTACT_KINDS and not email:
        raise EventProblem(f"a {name} event needs the 'email' field")
    return ProviderEvent(
        provider="sendgrid",
        channel="email",
        kind=kind,
        raw_type=name,
        dedupe_key=key,
        occurred_at=occurred_at,
        message_id=message_id,
        request_id=request_id,
        slot=slot,
        contact=email,
        error_code=error_code,
        detail=detail,
        error_kind=error_kind,
    )


# -- Twilio ------------------------------------------------------------------------------


def parse_twilio_status(form):
    """A status callback (form fields). Raises EventProblem on a callback we cannot use."""
    _refuse_unstorable(form)
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid or len(sid) > 64:
        raise EventProblem("field 'MessageSid' is missing")
    if not status or len(status) > 30:
        raise EventProblem("field 'MessageStatus' is missing")
    kind = TWILIO_KINDS.get(status)
    error_code = _text(form.get("ErrorCode"), 40)
    detail, error_kind = None, None
    if kind == FAILED:
        error_kind, detail = twilio.report_failure(status, error_code)
    elif kind == SENT:
        detail = "Twilio handed the message to the carrier"
    to = (form.get("To") or "").strip()
    return ProviderEvent(
        provider="twilio",
        channel="sms",
        kind=kind,
        raw_type=status,
        # A message reaches each status once, so SID + status is the spec §7.3 key with the
        # message's lifetime as the window (Twilio's callbacks carry no event time).
        dedupe_key=f"twilio:{sid}:{status}",
        occurred_at=None,
        message_id=sid,
        contact=to if E164.match(to) else None,
        error_code=error_code,
        detail=detail,
        error_kind=error_kind,
    )


def sms_keyword(body, opt_out_type=None):
    """OPTED_OUT / OPTED_IN for an inbound text that is a STOP or START keyword, else None.

    Twilio's Advanced Opt-Out says which it was (``OptOutType``); otherwise the whole
    message must be the keyword, ignoring case, spaces and trailing punctuation.
    """
    marked = (opt_out_type or "").strip().upper()
    if marked == "STOP":
        return OPTED_OUT
    if marked == "START":
        return OPTED_IN
    text = (body or "").strip().upper()
    if text.rstrip(".!") in STOP_WORDS or text.replace(" ", "") == "OPTOUT":
        return OPTED_OUT
    if text in START_WORDS:
        return OPTED_IN
    return None


def parse_twilio_inbound(form):
    """An inbound message: an opt-out/opt-in event for its sender, or kind None."""
    _refuse_unstorable(form)
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid or len(sid) > 64:
        raise EventProblem("field 'MessageSid' is missing")
    sender = (form.get("From") or "").strip()
    if not sender:
        raise EventProblem("field 'From' is missing")
    body = form.get("Body") or ""
    kind = sms_keyword(body, form.get("OptOutType"))
    if kind is not None and not E164.match(sender):
        kind = None  # a short code or a WhatsApp address: not a number we text
    keyword = _text(body, 40) or ""
    return ProviderEvent(
        provider="twilio",
        channel="sms",
        kind=kind,
        raw_type=keyword.upper() or "message",
        dedupe_key=f"twilio:inbound:{sid}",
        occurred_at=None,
        contact=sender,
        detail=f"the customer texted {keyword.upper()!r}" if kind else None,
    )
