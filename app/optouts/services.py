"""The suppression list: the one place that adds a contact to it or takes one off.

Customers opt out through the unsubscribe link (``unsubscribe``), SMS STOP, or their mail
client (SendGrid unsubscribe / spam report: ``record_contact_event``); providers report it
(Twilio 21610: the dispatch tick reports each refused send as data, ``suppress_refused``
acts on it). Whatever the source, an
opted-out contact gets no further message from any campaign: every addition goes through
``suppress``, which sends the ``suppressed`` signal; the request lifecycle, connected to it
in the app factory, cancels the contact's pending requests in the same transaction.

The merchant sees the list, adds a contact by hand (a customer asked by phone) or removes
one (a customer asked to be contacted again), in the dashboard and with ``flask optouts``;
both are recorded as contact events with who did it. Removing an opt-out does not revive
the requests it cancelled (cancelled is final); new orders create requests again.

Flushes, never commits.
"""

import logging

from blinker import Namespace
from sqlalchemy import func, or_, select

from app.clock import isoformat
from app.extensions import db
from app.optouts.masks import mask_email, mask_phone
from app.optouts.models import E164, EMAIL, OPTED_IN, OPTED_OUT, ContactEvent, OptOut, normalise_contact
from app.providers.base import OPTED_OUT as REFUSED_AS_OPTED_OUT

log = logging.getLogger("app.optouts")


def masked(channel, contact):
    """A contact as log lines name it: enough for an operator to recognise, not the
    address itself (log files are copied and kept further than the database is)."""
    return mask_email(contact) if channel == "email" else mask_phone(contact)


CHANNELS = ("email", "sms")
MERCHANT = "merchant"
STORED, DUPLICATE = "stored", "duplicate"  # what record_contact_event did with a provider's event

suppressed = Namespace().signal(
    "contact-suppressed",
    doc="Sent by ``suppress`` with the channel as sender and ``contact`` (normalised), ``now``, "
    "``source``: whatever sends to the contact stops (connected in ``app.create_app``).",
)


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
    contact = clean_contact(channel, contact)
    note = (detail or "").strip()[:200] or None
    text = f"added by {by}" + (f": {note}" if note else "")
    created = suppress(channel, contact, now, source=MERCHANT, detail=text[:255])
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
    log.info("opt-out %s %s %s by %s", channel, masked(channel, contact), "added" if created else "already listed", by)
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
    log.info(
        "opt-out %s %s removed by %s (source was %s)", row.channel, masked(row.channel, row.contact), by, row.source
    )
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


# -- adding and removing: every source ends here ----------------------------------------------


def suppress(channel, contact, now, *, source, detail=None):
    """Add a contact to the suppression list (once) and stop what is pending for it (the
    ``suppressed`` signal: the lifecycle cancels the contact's pending requests, also when
    it was already listed). True when the contact was not on the list before."""
    contact = normalise_contact(channel, contact)
    exists = db.session.scalar(select(OptOut).where(OptOut.channel == channel, OptOut.contact == contact))
    if exists is None:
        db.session.add(OptOut(channel=channel, contact=contact, source=source, detail=detail, created_at=now))
        db.session.flush()
        log.info("opt-out %s %s (%s)", channel, masked(channel, contact), source)
    suppressed.send(channel, contact=contact, now=now, source=source)
    return exists is None


def suppress_refused(failure, *, contact, now, request_id):
    """A send a provider refused (``app.lifecycle.results.send_refused``, connected in the app
    factory): when the provider knows the recipient unsubscribed (failure kind
    ``opted_out``, Twilio 21610) the contact goes on the list, with the provider and its
    code as the source ("twilio_21610"), atomically with the failure it explains. Any other
    refusal changes nothing here. True when the contact was added."""
    if failure.kind != REFUSED_AS_OPTED_OUT or not contact:
        return False
    return suppress(
        failure.channel, contact, now, source=f"{failure.provider}_{failure.code}", detail=f"request {request_id}"
    )


def unsubscribe(req, now, *, source):
    """The customer's unsubscribe link: every channel of their request is suppressed."""
    for channel in req.channels:
        contact = req.customer_email if channel == "email" else req.customer_phone
        if contact:
            suppress(channel, contact, now, source=source, detail=f"request {req.id}")


def is_suppressed(channel, contact):
    """Is this (normalised) contact on the list?"""
    return db.session.scalar(select(OptOut.id).where(OptOut.channel == channel, OptOut.contact == contact)) is not None


def record_contact_event(
    channel,
    contact,
    kind,
    occurred_at,
    now,
    *,
    source,
    provider=None,
    dedupe_key=None,
    detail=None,
    only_if_source=None,
):
    """An opt-out or opt-in for a contact: recorded once, applied unless a later opposite
    event exists (a late opt-out older than the merchant's removal stays removed).
    Returns STORED, or DUPLICATE for a ``dedupe_key`` already recorded.

    ``only_if_source``: an opt-in removes only an opt-out of that source (SendGrid's group
    resubscribe undoes a group unsubscribe, never a STOP or a spam report)."""
    contact = normalise_contact(channel, contact)
    if dedupe_key is not None and db.session.scalar(
        select(ContactEvent.id).where(ContactEvent.dedupe_key == dedupe_key)
    ):
        return DUPLICATE
    opposite = OPTED_IN if kind == OPTED_OUT else OPTED_OUT
    later = db.session.scalar(
        select(ContactEvent.id)
        .where(
            ContactEvent.channel == channel,
            ContactEvent.contact == contact,
            ContactEvent.type == opposite,
            ContactEvent.applied.is_(True),
            ContactEvent.occurred_at > occurred_at,
        )
        .limit(1)
    )
    row = ContactEvent(
        channel=channel,
        contact=contact,
        type=kind,
        source=source[:40],
        provider=provider,
        dedupe_key=dedupe_key,
        applied=later is None,
        detail=(detail or "")[:255] or None,
        occurred_at=occurred_at,
        created_at=now,
    )
    db.session.add(row)
    db.session.flush()
    if later is not None:
        log.info(
            "%s %s %s at %s is older than a later %s: recorded, not applied",
            channel,
            masked(channel, contact),
            kind,
            occurred_at,
            opposite,
        )
        return STORED
    if kind == OPTED_OUT:
        suppress(channel, contact, now, source=source[:40], detail=detail)
    else:
        remove_suppression(channel, contact, source=source, only_if_source=only_if_source)
    return STORED


def remove_suppression(channel, contact, *, source, only_if_source=None):
    """Delete the contact's OptOut row; True when there was one to delete."""
    row = db.session.scalar(select(OptOut).where(OptOut.channel == channel, OptOut.contact == contact))
    if row is None or (only_if_source is not None and row.source != only_if_source):
        return False
    db.session.delete(row)
    db.session.flush()
    log.info("opt-in %s %s (%s): removed from the suppression list", channel, masked(channel, contact), source)
    return True
