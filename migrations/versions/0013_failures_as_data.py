"""Failures as data: a failed send or delivery report is stored as fields, not a sentence

``slot_sends`` gains ``error_code`` and ``error_kind`` (``error`` keeps only the provider's
message; ``retryable`` was there already); a request's ``failed`` events gain
``retryable`` and ``error_kind`` (``detail`` keeps only the provider's message; channel,
provider and ``error_code`` were there already). The request's ``last_error`` sentence
becomes ``email_failure_id`` / ``sms_failure_id``: the event that records each channel's
standing failure.

Existing rows are read once, here: the sentences the code wrote until now
(``permanent [21211]: …``, ``undelivered [30003]: …``, ``bounce (blocked): …``) are
split into their fields. The downgrade writes the sentences back from the fields.

Revision ID: 0013
Revises: 0012
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The formats written before this revision (frozen here: the code no longer writes them).
SEND_RESULT = re.compile(
    r"^(?P<state>retryable|permanent|interrupted, outcome unknown)(?: \[(?P<code>[^\]]*)\])?(?:: (?P<message>.*))?$",
    re.S,
)
TWILIO_REPORT = re.compile(r"^(?P<status>undelivered|failed)(?: \[(?P<code>\w+)\])?(?::\s*(?P<message>.*))?$", re.S)
SENDGRID_REPORT = re.compile(r"^(?P<event>bounce|dropped)(?: \((?P<type>[\w-]+)\))?:\s*(?P<message>.*)$", re.S)
INTERRUPTED_TEXT = "interrupted, outcome unknown"
INTERRUPTED_MESSAGE = "the sending process stopped before the provider's answer was recorded"

TWILIO_REPORT_KINDS = {
    "30003": "undelivered",
    "30004": "undelivered",
    "30005": "address",
    "30006": "address",
    "30007": "undelivered",
    "30008": "undelivered",
    "30034": "setup",
    "21610": "opted_out",
}
ADDRESS_CODES = {"21211", "21612", "21614", "outbox-rejected"}
SETUP_CODES = {"21408", "21606", "20003", "401", "403", "413", "scope", "config"}

slot_sends = sa.table(
    "slot_sends",
    sa.column("id", sa.Integer),
    sa.column("error", sa.Text),
    sa.column("error_code", sa.String),
    sa.column("error_kind", sa.String),
    sa.column("retryable", sa.Boolean),
)
events = sa.table(
    "testimonial_request_events",
    sa.column("id", sa.Integer),
    sa.column("request_id", sa.Integer),
    sa.column("type", sa.String),
    sa.column("channel", sa.String),
    sa.column("provider", sa.String),
    sa.column("provider_message_id", sa.String),
    sa.column("error_code", sa.String),
    sa.column("detail", sa.Text),
    sa.column("occurred_at", sa.DateTime),
    sa.column("dedupe_key", sa.String),
    sa.column("retryable", sa.Boolean),
    sa.column("error_kind", sa.String),
)
requests = sa.table(
    "testimonial_requests",
    sa.column("id", sa.Integer),
    sa.column("last_error", sa.Text),
    sa.column("email_failure_id", sa.Integer),
    sa.column("sms_failure_id", sa.Integer),
)


# -- reading the old sentences -----------------------------------------------------------


def read_send_result(text, retryable=False):
    """``permanent [code]: message`` → (code, retryable, message, kind)."""
    text = (text or "").strip()
    result = SEND_RESULT.match(text)
    if result is None:
        return None, bool(retryable), text, "unknown"
    state, code, message = result["state"], result["code"], (result["message"] or "").strip()
    if state == INTERRUPTED_TEXT:
        return code or "interrupted", False, message or INTERRUPTED_MESSAGE, "interrupted"
    retryable = state == "retryable"
    lowered = message.lower()
    if code == "template" or message.startswith("template error"):
        return code or "template", False, message.split("template error:", 1)[-1].strip(), "template"
    if code in ("429", "20429") or "rate limit" in lowered:
        return code, True, message, "rate_limited"
    if retryable:
        return code, True, message, "unavailable"
    if code == "21610" or "unsubscribed" in lowered:
        return code, False, message, "opted_out"
    if code in ADDRESS_CODES or "invalid 'to'" in lowered:
        return code, False, message, "address"
    if code in SETUP_CODES or (code or "").startswith("account-"):
        return code, False, message, "setup"
    return code, False, message, "refused"


def read_report(provider, detail, old_code):
    """A delivery report's detail → (code, message, kind)."""
    detail = (detail or "").strip()
    twilio = TWILIO_REPORT.match(detail) if provider == "twilio" else None
    if twilio:
        code = twilio["code"] or old_code
        message = (twilio["message"] or "").strip() or f"Twilio reported the message {twilio['status']}"
        return code, message, TWILIO_REPORT_KINDS.get(code or "", "undelivered")
    sendgrid = SENDGRID_REPORT.match(detail) if provider == "sendgrid" else None
    if sendgrid:
        # The code stays as it was (the SMTP status, else the bounce type or the event).
        message = sendgrid["message"].strip() or "no reason given"
        if sendgrid["event"] == "dropped":
            lowered = message.lower()
            kinds = (("unsubscribe", "opted_out"), ("spam", "opted_out"), ("bounce", "address"), ("invalid", "address"))
            return old_code, message, next((kind for word, kind in kinds if word in lowered), "undelivered")
        return old_code, message, "undelivered" if sendgrid["type"] == "blocked" else "address"
    return old_code, detail, "undelivered"


def standing_failures(rows):
    """Each channel's standing failure event id (the reading ``states.channel_failures``
    made when this revision was written)."""
    handed_over = {
        (r.channel, r.provider_message_id): r.occurred_at
        for r in rows
        if r.type == "sent" and r.dedupe_key is None and r.provider_message_id
    }

    def when(r):
        if r.dedupe_key is None:
            return (r.occurred_at, 0, "", r.id)
        at = max(r.occurred_at, handed_over.get((r.channel, r.provider_message_id), r.occurred_at))
        return (at, 1, r.dedupe_key, r.id)

    current = {}
    for r in sorted(rows, key=when):
        if r.type == "retried":
            current.clear()
        elif r.channel is None:
            continue
        elif r.type == "failed":
            current[r.channel] = r.id
        elif r.dedupe_key is None:
            current.pop(r.channel, None)
    return current


# -- writing them back (downgrade) ------------------------------------------------------


def send_sentence(code, retryable, message, kind):
    state = INTERRUPTED_TEXT if kind == "interrupted" else ("retryable" if retryable else "permanent")
    if kind == "template":
        message = f"template error: {message}"
    return f"{state}{f' [{code}]' if code else ''}: {message or 'no details'}"


def report_sentence(provider, code, message, kind):
    if provider == "sendgrid":
        if code == "dropped":
            return f"dropped: {message}"
        return f"bounce{' (blocked)' if kind == 'undelivered' else ''}: {message}"
    return f"undelivered{f' [{code}]' if code else ''}: {message}"


# Plain ADD / DROP COLUMN, no batch copy: a table rebuild on SQLite would drop the
# daily_stats triggers on testimonial_requests and slot_sends (0005). SQLite has dropped
# columns in place since 3.35.
ADDED = (
    ("slot_sends", "error_code", sa.String(length=40)),
    ("slot_sends", "error_kind", sa.String(length=20)),
    ("testimonial_request_events", "retryable", sa.Boolean()),
    ("testimonial_request_events", "error_kind", sa.String(length=20)),
    ("testimonial_requests", "email_failure_id", sa.Integer()),
    ("testimonial_requests", "sms_failure_id", sa.Integer()),
)


def upgrade():
    for table, name, type_ in ADDED:
        op.add_column(table, sa.Column(name, type_, nullable=True))

    bind = op.get_bind()
    found = bind.execute(
        sa.select(slot_sends.c.id, slot_sends.c.error, slot_sends.c.retryable).where(slot_sends.c.error.is_not(None))
    ).all()
    for row in found:
        code, retryable, message, kind = read_send_result(row.error, row.retryable)
        bind.execute(
            slot_sends.update()
            .where(slot_sends.c.id == row.id)
            .values(error=message, error_code=code, error_kind=kind, retryable=retryable)
        )
    found = bind.execute(
        sa.select(events.c.id, events.c.provider, events.c.error_code, events.c.detail, events.c.dedupe_key).where(
            events.c.type == "failed", events.c.channel.is_not(None)
        )
    ).all()
    for row in found:
        if row.dedupe_key is None:
            code, retryable, message, kind = read_send_result(row.detail)
            code = code or row.error_code
        else:
            (code, message, kind), retryable = read_report(row.provider, row.detail, row.error_code), False
        bind.execute(
            events.update()
            .where(events.c.id == row.id)
            .values(error_code=code, detail=message, retryable=retryable, error_kind=kind)
        )
    failing = bind.execute(sa.select(requests.c.id).where(requests.c.last_error.is_not(None))).scalars().all()
    for request_id in failing:
        rows = bind.execute(
            sa.select(events).where(events.c.request_id == request_id, events.c.type.in_(("sent", "failed", "retried")))
        ).all()
        standing = standing_failures(rows)
        bind.execute(
            requests.update()
            .where(requests.c.id == request_id)
            .values(email_failure_id=standing.get("email"), sms_failure_id=standing.get("sms"))
        )

    op.drop_column("testimonial_requests", "last_error")


def downgrade():
    op.add_column("testimonial_requests", sa.Column("last_error", sa.Text(), nullable=True))

    bind = op.get_bind()
    sentences = {}
    found = bind.execute(
        sa.select(
            events.c.id,
            events.c.channel,
            events.c.provider,
            events.c.error_code,
            events.c.detail,
            events.c.dedupe_key,
            events.c.retryable,
            events.c.error_kind,
        ).where(events.c.type == "failed", events.c.channel.is_not(None))
    ).all()
    for row in found:
        if row.dedupe_key is None:
            detail = send_sentence(row.error_code, row.retryable, row.detail, row.error_kind)
            sentences[row.id] = detail
        else:
            detail = report_sentence(row.provider, row.error_code, row.detail, row.error_kind)
            sentences[row.id] = f"{detail} (reported by {row.provider})"
        bind.execute(events.update().where(events.c.id == row.id).values(detail=detail))
    found = bind.execute(
        sa.select(requests.c.id, requests.c.email_failure_id, requests.c.sms_failure_id).where(
            sa.or_(requests.c.email_failure_id.is_not(None), requests.c.sms_failure_id.is_not(None))
        )
    ).all()
    for row in found:
        parts = [
            f"{channel}: {sentences[event_id]}"
            for channel, event_id in (("email", row.email_failure_id), ("sms", row.sms_failure_id))
            if event_id in sentences
        ]
        bind.execute(requests.update().where(requests.c.id == row.id).values(last_error=" · ".join(parts) or None))
    found = bind.execute(
        sa.select(
            slot_sends.c.id,
            slot_sends.c.error,
            slot_sends.c.error_code,
            slot_sends.c.error_kind,
            slot_sends.c.retryable,
        ).where(slot_sends.c.error_kind.is_not(None))
    ).all()
    for row in found:
        if row.error_kind == "interrupted" and row.error_code == "interrupted":
            error = INTERRUPTED_TEXT
        else:
            error = send_sentence(row.error_code, row.retryable, row.error, row.error_kind)
        bind.execute(slot_sends.update().where(slot_sends.c.id == row.id).values(error=error))

    for table, name, _ in reversed(ADDED):
        op.drop_column(table, name)
