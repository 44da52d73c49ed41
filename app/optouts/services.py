"""The suppression list as the merchant sees it: list, add, remove (dashboard and CLI).

Customers opt out through the unsubscribe link, SMS STOP, or their mail client
(SendGrid unsubscribe / spam report); providers report it (Twilio 21610). Whatever the
source, an opted-out contact gets no further message from any campaign. The merchant can
add a contact by hand (a customer asked by phone) or remove one (a customer asked to be
contacted again); both are recorded as contact events with who did it.

Removing an opt-out does not revive the requests it cancelled (cancelled is final); new
orders create requests again. Flushes, never commits.
"""

import logging

from sqlalchemy import func, or_, select

from app.clock import isoformat
from app.events.models import OPTED_IN, OPTED_OUT, ContactEvent
from app.extensions import db
from app.intake.schema import E164, EMAIL
from app.optouts.models import OptOut, normalise_contact

log = logging.getLogger("app.optouts")

CHANNELS = ("email", "sms")
MERCHANT = "merchant"


class OptOutInvalid(ValueError):
    """Bad input from the merchant (a 400 / a form error), naming the field."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


class OptOutNotFound(LookupError):
    """No such opt-out (a 404)."""


def clean_contact(channel, contact):
    """The normalised contact, or OptOutInvalid: an email address, or a phone in E.164."""
    if channel not in CHANNELS:
        raise OptOutInvalid("channel must be email or sms", "channel")
    text = (contact or "").strip()
    if channel == "email":
        if not EMAIL.match(text) or len(text) > 254:
            raise OptOutInvalid(f"{text!r} is not an email address", "contact")
    else:
        compact = "".join(text.split()).replace("-", "").replace("(", "").replace(")", "")
        if not E164.match(compact):
            raise OptOutInvalid(f"{text!r} is not a phone number in international format, e.g. +15551234567", "contact")
        text = compact
    return normalise_contact(channel, text)


def optouts_query(*, channel=None, search=None):
    """Opt-outs newest first, as a select the dashboard can paginate (db.paginate)."""
    query = select(OptOut).order_by(OptOut.created_at.desc(), OptOut.id.desc())
    if channel:
        query = query.where(OptOut.channel == channel)
    if search and search.strip():
        pattern = f"%{search.strip().lower()}%"
        query = query.where(or_(func.lower(OptOut.contact).like(pattern), OptOut.source.like(pattern)))
    return query


def list_optouts(*, channel=None, search=None, limit=None):
    query = optouts_query(channel=channel, search=search)
    if limit:
        query = query.limit(limit)
    return db.session.scalars(query).all()


def count_optouts(channel=None):
    query = select(func.count(OptOut.id))
    if channel:
        query = query.where(OptOut.channel == channel)
    return db.session.scalar(query)


def find_optout(channel, contact):
    return db.session.scalar(
        select(OptOut).where(OptOut.channel == channel, OptOut.contact == normalise_contact(channel, contact))
    )


def get_optout(optout_id):
    row = db.session.get(OptOut, optout_id)
    if row is None:
        raise OptOutNotFound(f"no opt-out with id {optout_id}")
    return row


def add_optout(channel, contact, now, *, by=MERCHANT, detail=None):
    """The merchant suppresses a contact: pending requests to it are cancelled at once.

    Returns (OptOut, created); created is False when it was already on the list."""
    from app.public.services import opt_out

    contact = clean_contact(channel, contact)
    note = (detail or "").strip()[:200] or None
    text = f"added by {by}" + (f": {note}" if note else "")
    created = opt_out(channel, contact, now, source=MERCHANT, detail=text[:255])
    db.session.add(
        ContactEvent(
            channel=channel,
            contact=contact,
            type=OPTED_OUT,
            source=MERCHANT,
            detail=text[:255],
            occurred_at=now,
            created_at=now,
        )
    )
    db.session.flush()
    log.info("opt-out %s %s %s by %s", channel, contact, "added" if created else "already listed", by)
    return find_optout(channel, contact), created


def remove_optout(optout_id, now, *, by=MERCHANT):
    """The merchant lets a contact receive messages again; returns what was removed.

    Only later orders are affected: requests the opt-out cancelled stay cancelled."""
    row = get_optout(optout_id)
    removed = optout_dict(row)
    db.session.add(
        ContactEvent(
            channel=row.channel,
            contact=row.contact,
            type=OPTED_IN,
            source=MERCHANT,
            detail=f"removed by {by} (was: {row.source})"[:255],
            occurred_at=now,
            created_at=now,
        )
    )
    db.session.delete(row)
    db.session.flush()
    log.info("opt-out %s %s removed by %s (source was %s)", row.channel, row.contact, by, row.source)
    return removed


def contact_history(channel, contact, limit=50):
    """Opt-out and opt-in events of one contact, newest first (providers and merchant)."""
    return db.session.scalars(
        select(ContactEvent)
        .where(ContactEvent.channel == channel, ContactEvent.contact == normalise_contact(channel, contact))
        .order_by(ContactEvent.occurred_at.desc(), ContactEvent.id.desc())
        .limit(limit)
    ).all()


SOURCE_LABELS = {
    "link": "unsubscribe link",
    "sms_stop": "replied STOP",
    "merchant": "added by the merchant",
    "twilio_21610": "Twilio: number replied STOP",
    "sendgrid_unsubscribe": "SendGrid unsubscribe",
    "sendgrid_group_unsubscribe": "SendGrid group unsubscribe",
    "sendgrid_spamreport": "marked as spam",
}


def source_label(source):
    """A merchant-readable name for an opt-out source."""
    return SOURCE_LABELS.get(source, source)


def optout_dict(row):
    return {
        "id": row.id,
        "channel": row.channel,
        "contact": row.contact,
        "source": row.source,
        "source_label": source_label(row.source),
        "detail": row.detail,
        "created_at": isoformat(row.created_at),
    }
