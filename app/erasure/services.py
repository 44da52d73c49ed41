"""Erasing a customer (GDPR art. 17): every request, testimonial, stored file, outbox
message, event payload and intake record of one email address or phone number.

What "erase" means per table, chosen so that the overview's figures stay right:

- testimonial_requests: kept as counted rows with every contact field emptied, the link
  token replaced (the old link is dead), errors cleared; one still waiting is cancelled.
  (Deleting them would change the daily counts, which are kept by triggers.)
- testimonials: status ``erased``, text, name, rating and consent address cleared, every
  file deleted from every storage (``app.testimonials.removal``); the row stays as a
  count (with or without video) for the funnel.
- testimonial_request_events, slot_sends: their free text (provider answers that may
  quote the address) cleared; times and types stay.
- outbox_messages, contact_events, opt_outs, video_uploads: deleted.
- order_events: the stored webhook body of every order of that customer is replaced by
  a note; order_event_items' reasons that quote the contact are cleared.

What stays is one ``contact_erasures`` row per contact with an HMAC of it (keyed with the
app's SECRET_KEY), the time and who asked: a later order from the same contact is then
skipped with a reason (``app.optouts.erasures``) unless the merchant lifts the block.
"""

import logging
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, func, or_, select, update

from app.clock import isoformat
from app.extensions import db
from app.intake.models import ERASED_PAYLOAD, OrderEvent, OrderEventItem
from app.lifecycle.models import SlotSend, TestimonialRequest, TestimonialRequestEvent
from app.lifecycle.services import cancel_request
from app.lifecycle.states import CANCELLABLE
from app.optouts.erasures import contact_hash
from app.optouts.models import ContactErasure, ContactEvent, OptOut
from app.optouts.services import OptOutInvalid, clean_contact
from app.outbox.models import OutboxMessage
from app.testimonials.models import Testimonial, VideoUpload
from app.testimonials.moderation import ERASED, move
from app.testimonials.removal import delete_files, stored_keys, uploads_of

log = logging.getLogger("app.erasure")
R = TestimonialRequest


class ErasureInvalid(ValueError):
    pass


def parse_contact(text):
    """(channel, normalised contact) of an email address or an E.164 phone number."""
    text = (text or "").strip()
    channel = "email" if "@" in text else "sms"
    try:
        return channel, clean_contact(channel, text)
    except OptOutInvalid as exc:
        raise ErasureInvalid(f"{exc} — give the customer's email address or phone number (+15551234567)") from None


@dataclass
class ErasurePlan:
    """What an erasure will touch (shown to the merchant before they confirm)."""

    channel: str
    contact: str
    emails: set = field(default_factory=set)
    phones: set = field(default_factory=set)
    request_ids: list = field(default_factory=list)
    testimonial_ids: list = field(default_factory=list)
    files: list = field(default_factory=list)
    outbox: int = 0
    order_event_ids: list = field(default_factory=list)
    contact_events: int = 0
    opt_outs: int = 0
    uploads: int = 0

    def summary(self):
        parts = [
            (len(self.request_ids), "request"),
            (len(self.testimonial_ids), "testimonial"),
            (len(self.files), "stored file"),
            (self.uploads, "unfinished upload"),
            (self.outbox, "outbox message"),
            (len(self.order_event_ids), "order webhook"),
            (self.contact_events, "opt-out event"),
            (self.opt_outs, "opt-out"),
        ]
        return ", ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in parts)


def _requests_of(emails, phones):
    conditions = []
    if emails:
        conditions.append(R.customer_email.in_(emails))
    if phones:
        conditions.append(R.customer_phone.in_(phones))
    return db.session.scalars(select(R).where(or_(*conditions)).order_by(R.id)).all() if conditions else []


def plan_erasure(text):
    """Everything that belongs to this contact. The customer's other contact found on
    their requests (the phone beside an email) is the same person: erased too."""
    channel, contact = parse_contact(text)
    plan = ErasurePlan(channel, contact)
    (plan.emails if channel == "email" else plan.phones).add(contact)
    requests = _requests_of(plan.emails, plan.phones)
    plan.emails |= {r.customer_email for r in requests if r.customer_email}
    plan.phones |= {r.customer_phone for r in requests if r.customer_phone}
    requests = _requests_of(plan.emails, plan.phones)
    plan.request_ids = [r.id for r in requests]
    testimonials = db.session.scalars(select(Testimonial).where(Testimonial.request_id.in_(plan.request_ids))).all()
    plan.testimonial_ids = [t.id for t in testimonials]
    plan.files = [key for t in testimonials for key in stored_keys(t)]
    plan.uploads = len(uploads_of(plan.request_ids)) if plan.request_ids else 0
    contacts = plan.emails | plan.phones
    plan.outbox = db.session.scalar(
        select(func.count(OutboxMessage.id)).where(
            or_(OutboxMessage.request_id.in_(plan.request_ids), OutboxMessage.to.in_(contacts))
        )
    )
    plan.order_event_ids = _order_events_of(plan, requests)
    plan.contact_events = db.session.scalar(
        select(func.count(ContactEvent.id)).where(ContactEvent.contact.in_(contacts))
    )
    plan.opt_outs = db.session.scalar(select(func.count(OptOut.id)).where(OptOut.contact.in_(contacts)))
    return plan


def _order_events_of(plan, requests):
    """The order webhooks of this customer: those their requests came from, those of the
    same orders (cancellations, refunds), and any other body that names the contact (an
    order whose items were all skipped made no request)."""
    orders = {r.order_id for r in requests}
    ids = {r.order_event_id for r in requests if r.order_event_id}
    if orders:
        ids |= set(db.session.scalars(select(OrderEvent.id).where(OrderEvent.order_id.in_(orders))))
    for contact in plan.emails | plan.phones:
        ids |= set(db.session.scalars(select(OrderEvent.id).where(OrderEvent.payload.contains(contact))))
    return sorted(ids)


def erase(text, now, *, by):
    """Carry the erasure out (flushes; the caller commits). Returns the plan it followed."""
    plan = plan_erasure(text)
    contacts = plan.emails | plan.phones
    names = set()
    for req in _requests_of(plan.emails, plan.phones):
        names |= {n for n in (req.customer_first_name, req.customer_last_name) if n}
        if req.status in CANCELLABLE:
            cancel_request(req, now, "customer erased on request")
    ids = plan.request_ids
    if ids:
        db.session.execute(
            update(R)
            .where(R.id.in_(ids))
            .values(
                customer_email=None,
                customer_phone=None,
                customer_first_name=None,
                customer_last_name=None,
                email_failure_id=None,
                sms_failure_id=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        # A token is unique: each request gets its own dead one.
        for request_id in ids:
            db.session.execute(
                update(R)
                .where(R.id == request_id)
                .values(token=_dead_token())
                .execution_options(synchronize_session=False)
            )
        db.session.execute(
            update(TestimonialRequestEvent)
            .where(TestimonialRequestEvent.request_id.in_(ids))
            .values(detail=None)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            update(SlotSend)
            .where(SlotSend.request_id.in_(ids))
            .values(error=None)
            .execution_options(synchronize_session=False)
        )
    if plan.testimonial_ids:
        move(plan.testimonial_ids, ERASED, now, erased_at=now)
        db.session.execute(
            update(Testimonial)
            .where(Testimonial.id.in_(plan.testimonial_ids))
            .values(
                text=None,
                display_name=None,
                rating=None,
                consent_ip=None,
                video_key=None,
                playable_key=None,
                poster_key=None,
                video_status="none",
                video_error=None,
            )
            .execution_options(synchronize_session=False)
        )
    uploads = uploads_of(ids) if ids else []
    upload_keys = [u.storage_key for u in uploads]
    if uploads:
        db.session.execute(delete(VideoUpload).where(VideoUpload.id.in_([u.id for u in uploads])))
    if contacts:
        db.session.execute(
            delete(OutboxMessage).where(or_(OutboxMessage.request_id.in_(ids), OutboxMessage.to.in_(contacts)))
        )
        db.session.execute(delete(ContactEvent).where(ContactEvent.contact.in_(contacts)))
        db.session.execute(delete(OptOut).where(OptOut.contact.in_(contacts)))
    if plan.order_event_ids:
        db.session.execute(
            update(OrderEvent)
            .where(OrderEvent.id.in_(plan.order_event_ids))
            .values(payload=ERASED_PAYLOAD)
            .execution_options(synchronize_session=False)
        )
        quoting = [OrderEventItem.reason.contains(word) for word in contacts | names]
        if quoting:
            db.session.execute(
                update(OrderEventItem)
                .where(OrderEventItem.order_event_id.in_(plan.order_event_ids), or_(*quoting))
                .values(reason="skipped (reason erased with the customer's data)")
                .execution_options(synchronize_session=False)
            )
    for channel, values in (("email", plan.emails), ("sms", plan.phones)):
        for contact in sorted(values):
            db.session.add(
                ContactErasure(
                    channel=channel,
                    contact_hash=contact_hash(channel, contact),
                    erased_at=now,
                    erased_by=by[:254],
                    summary=plan.summary()[:255],
                )
            )
    db.session.flush()
    delete_files(plan.files, upload_keys)
    db.session.expire_all()
    log.info("erasure by %s: %s", by, plan.summary())
    return plan


def _dead_token():
    return "erased-" + secrets.token_urlsafe(24)


def lift(text, now, *, by):
    """Take orders from this contact again. Returns how many erasure records were lifted."""
    channel, contact = parse_contact(text)
    result = db.session.execute(
        update(ContactErasure)
        .where(ContactErasure.contact_hash == contact_hash(channel, contact), ContactErasure.lifted_at.is_(None))
        .values(lifted_at=now, lifted_by=by[:254])
        .execution_options(synchronize_session=False)
    )
    log.info("erasure lifted by %s (%s records)", by, result.rowcount)
    return result.rowcount


def erasure_dicts():
    rows = db.session.scalars(
        select(ContactErasure).order_by(ContactErasure.erased_at.desc(), ContactErasure.id.desc())
    ).all()
    return [{**row.to_dict(), "erased_at": isoformat(row.erased_at)} for row in rows]
