"""Revision 0013 (failures as data) on a database that holds failures recorded as
sentences by the code before it: shared by the SQLite test (tests/lifecycle) and the
PostgreSQL one (tests/postgres).

``run_backfill_round_trip(app)`` starts from an empty database in the app's context:
upgrade to 0012, write rows the way the old code did, upgrade to 0013 and check the
fields and the sentences the dashboard builds from them, then downgrade and check the old
sentences are back.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app.extensions import db
from app.lifecycle import failures as sentences
from app.lifecycle.models import SlotSend, TestimonialRequest

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).replace(tzinfo=None)

REJECTED = "permanent [outbox-rejected]: recipient ada@fail.test rejected (simulated permanent failure)"
DOWN = "retryable [outbox-unavailable]: provider unavailable (simulated transient failure)"
RATE = "retryable [429]: SendGrid rate limit reached (429): too many requests"
TEMPLATE = "permanent [template]: template error: unknown variable 'nme'"
INTERRUPTED = "interrupted, outcome unknown"
INTERRUPTED_EVENT = (
    "interrupted, outcome unknown: the sending process stopped before the provider's answer was "
    "recorded (claimed at 2026-11-20 12:00:00 UTC)"
)
STOP = "permanent [21610]: the recipient unsubscribed (replied STOP): Attempt to send to unsubscribed recipient"


def _fill(table, values):
    """Values for every NOT NULL column without a default (the old schema's, reflected)."""
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.primary_key or column.server_default is not None:
            continue
        try:
            python = column.type.python_type
        except NotImplementedError:
            python = str
        row[column.name] = {int: 0, bool: False, datetime: T0}.get(python, f"{column.name}-{len(row)}")
    return row


class OldDatabase:
    def __init__(self):
        self.tables = sa.MetaData()
        self.tables.reflect(bind=db.engine)

    def insert(self, table_name, **values):
        table = self.tables.tables[table_name]
        with db.engine.begin() as conn:
            return conn.execute(table.insert().values(_fill(table, values)).returning(table.c.id)).scalar()

    def value(self, sql, **params):
        with db.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()


def write_old_rows():
    """Requests, sends and events as the code before 0013 wrote them; returns their ids."""
    old = OldDatabase()
    campaign = old.insert(
        "campaigns", name="Video reviews", status="active", trigger="delivered", channel="both", expire_after_days=30
    )

    def request(n, channel, last_error):
        return old.insert(
            "testimonial_requests",
            campaign_id=campaign,
            order_id=f"100{n}",
            item_id=f"li_{n}",
            product_id=f"p_{n}",
            product_title="Mug",
            channel=channel,
            token=f"token-{n}",
            status="failed",
            trigger_at=T0,
            customer_email="ada@fail.test",
            customer_phone="+15550009999",
            last_error=last_error,
        )

    def event(request_id, type_, seconds, channel=None, **fields):
        return old.insert(
            "testimonial_request_events",
            request_id=request_id,
            type=type_,
            channel=channel,
            occurred_at=T0 + timedelta(seconds=seconds),
            created_at=T0,
            **fields,
        )

    ids = {}
    # Both channels refused at send time: each stands.
    both = ids["both"] = request(1, "both", f"email: {REJECTED} · sms: {DOWN}")
    ids["both_email"] = event(
        both, "failed", 1, "email", provider="outbox", error_code="outbox-rejected", detail=REJECTED
    )
    ids["both_sms"] = event(both, "failed", 1, "sms", provider="outbox", error_code="outbox-unavailable", detail=DOWN)
    event(both, "failed", 2, detail="request failed: the provider refused the message permanently; use Retry")
    # Delivery reports: a SendGrid drop and a Twilio 30003.
    reported = ids["reported"] = request(
        2,
        "both",
        "email: dropped: Bounced Address (reported by sendgrid) · "
        "sms: undelivered [30003]: unreachable handset (off, or out of coverage) (reported by twilio)",
    )
    event(reported, "sent", 0, "email", provider="outbox", provider_message_id="m1")
    event(reported, "sent", 0, "sms", provider="outbox", provider_message_id="SM1")
    ids["dropped"] = event(
        reported,
        "failed",
        5,
        "email",
        provider="sendgrid",
        provider_message_id="m1",
        error_code="dropped",
        detail="dropped: Bounced Address",
        dedupe_key="sendgrid:e1",
    )
    ids["undelivered"] = event(
        reported,
        "failed",
        6,
        "sms",
        provider="twilio",
        provider_message_id="SM1",
        error_code="30003",
        detail="undelivered [30003]: unreachable handset (off, or out of coverage)",
        dedupe_key="twilio:SM1:undelivered",
    )
    # A failure that a later success cleared, and one a person's retry cleared.
    cleared = ids["cleared"] = request(3, "email", None)
    event(cleared, "failed", 1, "email", provider="outbox", error_code="outbox-unavailable", detail=DOWN)
    event(cleared, "sent", 60, "email", provider="outbox", provider_message_id="m3")
    retried = ids["retried"] = request(4, "email", None)
    event(retried, "failed", 1, "email", provider="outbox", error_code="outbox-rejected", detail=REJECTED)
    event(retried, "retried", 30)
    # The other old sentences: an interrupted send, a template error, a STOP.
    interrupted = ids["interrupted"] = request(5, "email", f"email: {INTERRUPTED_EVENT}")
    event(interrupted, "failed", 1, "email", provider="outbox", error_code="interrupted", detail=INTERRUPTED_EVENT)
    template = ids["template"] = request(6, "sms", f"sms: {TEMPLATE}")
    event(template, "failed", 1, "sms", error_code="template", detail=TEMPLATE)
    stop = ids["stop"] = request(7, "sms", f"sms: {STOP}")
    event(stop, "failed", 1, "sms", provider="twilio", error_code="21610", detail=STOP)

    def send(request_id, channel, error, retryable, n):
        return old.insert(
            "slot_sends",
            request_id=request_id,
            slot=0,
            channel=channel,
            resend=n,
            status="failed",
            provider="outbox",
            error=error,
            retryable=retryable,
            started_at=T0,
        )

    ids["send_rejected"] = send(both, "email", REJECTED, False, 0)
    ids["send_rate"] = send(both, "sms", RATE, True, 0)
    ids["send_interrupted"] = send(interrupted, "email", INTERRUPTED, False, 0)
    ids["send_template"] = send(template, "sms", TEMPLATE, False, 0)
    return ids


def run_backfill_round_trip(app):
    upgrade(revision="0012")
    ids = write_old_rows()

    upgrade(revision="0013")
    db.session.remove()

    def request(key):
        return db.session.get(TestimonialRequest, ids[key])

    both = request("both")
    assert (both.email_failure_id, both.sms_failure_id) == (ids["both_email"], ids["both_sms"])
    email, sms = both.failures
    assert (email.kind, email.code, email.retryable, email.provider, email.reported) == (
        "address",
        "outbox-rejected",
        False,
        "outbox",
        False,
    )
    assert email.message == "recipient ada@fail.test rejected (simulated permanent failure)"
    assert (sms.kind, sms.code, sms.retryable) == ("unavailable", "outbox-unavailable", True)
    # The same technical line as before, now built from the fields.
    assert both.last_error == f"email: {REJECTED} · sms: {DOWN}"
    texts = [e.text for e in sentences.explain_failures(both.failures, status="failed", attempts=3)]
    assert texts == [
        "Email: the address was rejected permanently — correct the email address, then Retry",
        "SMS: the provider was unavailable; gave up after 3 attempts — Retry to send again",
    ]

    reported = request("reported")
    assert (reported.email_failure_id, reported.sms_failure_id) == (ids["dropped"], ids["undelivered"])
    dropped, undelivered = reported.failures
    assert (dropped.kind, dropped.code, dropped.message, dropped.reported) == (
        "address",
        "dropped",
        "Bounced Address",
        True,
    )
    assert (undelivered.kind, undelivered.code, undelivered.reported) == ("undelivered", "30003", True)
    texts = [e.text for e in sentences.explain_failures(reported.failures, status="failed")]
    assert texts == [
        "Email: the address was rejected permanently (SendGrid will not send to an address that bounced "
        "before) (reported by SendGrid) — correct the email address, then Retry",
        "SMS: the message was not delivered: the phone was unreachable (switched off or out of coverage) "
        "(reported by Twilio) — Retry to send again, or correct the contact details first",
    ]

    assert request("cleared").failures == [] and request("retried").failures == []
    [interrupted] = request("interrupted").failures
    assert (interrupted.kind, interrupted.code, interrupted.retryable) == ("interrupted", "interrupted", False)
    assert request("interrupted").last_error == "email: " + INTERRUPTED_EVENT.replace(
        INTERRUPTED, f"{INTERRUPTED} [interrupted]", 1
    )
    [template] = request("template").failures
    assert (template.kind, template.message) == ("template", "unknown variable 'nme'")
    [stop] = request("stop").failures
    assert (stop.kind, stop.code) == ("opted_out", "21610")
    assert "the customer replied STOP" in sentences.explain(stop, status="failed").text

    def send(key):
        return db.session.get(SlotSend, ids[key]).failure

    assert (send("send_rejected").kind, send("send_rejected").code) == ("address", "outbox-rejected")
    assert (send("send_rate").kind, send("send_rate").retryable) == ("rate_limited", True)
    assert send("send_interrupted").kind == "interrupted"
    assert (send("send_template").kind, send("send_template").message) == ("template", "unknown variable 'nme'")
    db.session.remove()

    downgrade(revision="0012")

    old = OldDatabase()
    last_error = "SELECT last_error FROM testimonial_requests WHERE id = :id"
    assert old.value(last_error, id=ids["both"]) == f"email: {REJECTED} · sms: {DOWN}"
    assert old.value(last_error, id=ids["template"]) == f"sms: {TEMPLATE}"
    assert old.value(last_error, id=ids["stop"]) == f"sms: {STOP}"
    assert old.value(last_error, id=ids["cleared"]) is None
    reported_error = old.value(last_error, id=ids["reported"])
    assert reported_error.startswith(
        "email: dropped: Bounced Address (reported by sendgrid) · sms: undelivered [30003]"
    )
    error = "SELECT error FROM slot_sends WHERE id = :id"
    assert old.value(error, id=ids["send_rejected"]) == REJECTED
    assert old.value(error, id=ids["send_rate"]) == RATE
    assert old.value(error, id=ids["send_interrupted"]) == INTERRUPTED
    assert old.value(error, id=ids["send_template"]) == TEMPLATE
    detail = "SELECT detail FROM testimonial_request_events WHERE id = :id"
    assert old.value(detail, id=ids["both_sms"]) == DOWN

    upgrade()  # and up again to head
