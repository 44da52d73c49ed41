"""Request actions that are not the dispatch tick: click, submit, cancel, retry.

Service functions flush and never commit: the caller (a view, a CLI command) owns the
transaction boundary.
"""

import logging

from sqlalchemy import func, or_, select, update

from app.extensions import db
from app.lifecycle import names, policy
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.lifecycle.names import mask_email, mask_phone
from app.lifecycle.states import (
    CANCELLABLE,
    CANCELLED,
    CLICKED,
    FAILED,
    OPEN_FOR_SUBMISSION,
    SCHEDULED,
    SENT,
    SUBMITTED,
    add_event,
    transition,
)
from app.optouts.models import OptOut, normalise_contact
from app.optouts.services import OptOutInvalid, clean_contact, is_suppressed
from app.settings import current_settings

log = logging.getLogger("app.lifecycle")


class ActionRefused(ValueError):
    """A person asked for something the request's state does not allow (a 409)."""


def find_by_token(token):
    return db.session.scalar(select(TestimonialRequest).where(TestimonialRequest.token == token))


def mark_clicked(req, clicked_at):
    """The state side of a click, from the customer's page or a provider's click event.

    The earliest click time is kept; ``sent`` becomes ``clicked``; a request that failed
    only because a delivered-then-bounced report said so becomes ``clicked`` again with its
    reminder plan (a click proves a message arrived). Returns True for the first click.
    """
    first = req.clicked_at is None
    db.session.execute(
        update(TestimonialRequest)
        .where(
            TestimonialRequest.id == req.id,
            or_(TestimonialRequest.clicked_at.is_(None), TestimonialRequest.clicked_at > clicked_at),
        )
        .values(clicked_at=clicked_at)
        .execution_options(synchronize_session=False)
    )
    transition(req.id, SENT, CLICKED)  # only a sent request changes status
    db.session.refresh(req)
    if failed_by_delivery(req):
        following = policy.next_slot_after(
            req.next_slot - 1, req.sent_at, policy.ReminderSettings.of(req.campaign), last_sent_at=req.last_sent_at
        )
        next_send_at = following[1] if following and following[0] == req.next_slot else None
        if transition(req.id, FAILED, CLICKED, next_send_at=next_send_at):
            log.info(
                "step=6 request=%s campaign=%s clicked after a delivery failure: reminders as planned",
                req.id,
                req.campaign_id,
            )
        db.session.refresh(req)
    return first


def failed_by_delivery(req):
    """A ``failed`` request whose sends all went out: the failure came from a provider's
    delivery report, not from the dispatcher (which leaves the failed slot's rows)."""
    if req.status != FAILED or req.sent_at is None or req.next_slot < 1:
        return False
    pending_slot_rows = db.session.scalar(
        select(SlotSend.id)
        .where(SlotSend.request_id == req.id, SlotSend.slot == req.next_slot, SlotSend.resend == req.resend_count)
        .limit(1)
    )
    return pending_slot_rows is None


def record_click(req, now, *, detail=None):
    """The customer opened their link (step 6). Repeat opens are not recorded again."""
    if not mark_clicked(req, now):
        return False
    add_event(req.id, "clicked", now, detail=detail or "customer opened the link")
    log.info("step=6 clicked request=%s campaign=%s", req.id, req.campaign_id)
    return True


def record_submission(req, now):
    """Step 8: the customer submitted; no further reminders. Returns False if already done."""
    if not transition(req.id, OPEN_FOR_SUBMISSION, SUBMITTED, submitted_at=now, next_send_at=None):
        return False
    add_event(req.id, "submitted", now, detail="testimonial received; reminders stopped")
    log.info("step=8 submitted request=%s campaign=%s: reminders stopped", req.id, req.campaign_id)
    return True


def cancel_request(req, now, reason):
    """Stop a request for good (order cancelled or refunded, opt-out, merchant action)."""
    if not transition(req.id, CANCELLABLE, CANCELLED, cancelled_at=now, next_send_at=None):
        return False
    add_event(req.id, "cancelled", now, detail=reason)
    log.info("step=8 cancelled request=%s campaign=%s: %s", req.id, req.campaign_id, reason)
    return True


def cancel_requests_to(channel, *, contact, now, source):
    """The contact was just suppressed (``app.optouts.services.suppressed``, connected in
    the app factory): cancel its pending requests on that channel. A "both" request goes on
    while its other channel is still reachable."""
    column = TestimonialRequest.customer_email if channel == "email" else TestimonialRequest.customer_phone
    pending = db.session.scalars(
        select(TestimonialRequest).where(column == contact, TestimonialRequest.status.in_(CANCELLABLE))
    ).all()
    other = "sms" if channel == "email" else "email"
    for req in pending:
        if req.channel == "both":
            other_contact = req.customer_phone if other == "sms" else req.customer_email
            if not is_suppressed(other, normalise_contact(other, other_contact)):
                continue
        cancel_request(req, now, f"customer opted out ({channel}, {source})")


def retry_request(req, now, *, by="merchant"):
    """A person's Retry of a failed request: its failed slot is due again now."""
    db.session.refresh(req)
    if req.status != FAILED:
        raise ActionRefused(f"request {req.id} is {req.status}; only failed requests can be retried")
    if req.submitted_at is not None:
        raise ActionRefused(f"request {req.id} was already submitted")
    target = SCHEDULED if req.sent_at is None else (CLICKED if req.clicked_at else SENT)
    if not transition(req.id, FAILED, target, next_send_at=now, attempts=0, claimed_at=None, claim_id=None):
        raise ActionRefused(f"request {req.id} changed meanwhile; reload and try again")
    # A person asked: channels the provider refused for good are tried again too.
    db.session.execute(
        SlotSend.__table__.update()
        .where(
            SlotSend.request_id == req.id,
            SlotSend.slot == req.next_slot,
            SlotSend.resend == req.resend_count,
            SlotSend.status == SlotSend.FAILED,
        )
        .values(retryable=True)
    )
    add_event(req.id, "retried", now, slot=req.next_slot, detail=f"retry requested by {by}")
    log.info("step=5 retry requested request=%s campaign=%s slot=%s by=%s", req.id, req.campaign_id, req.next_slot, by)
    db.session.refresh(req)
    return req


def link_for(req):
    return current_settings().link(f"/r/{req.token}")


# -- explicit resend (Requests Log) ----------------------------------------------------

RESENDABLE = (SENT, CLICKED, FAILED)


def last_sent_slot(request_id):
    """The highest slot a provider accepted for this request (None: nothing sent yet)."""
    return db.session.scalar(
        select(func.max(SlotSend.slot)).where(SlotSend.request_id == request_id, SlotSend.status == SlotSend.SENT)
    )


def slot_name(slot):
    """ "the first message" or "reminder k", as every screen calls them."""
    return names.message_name(slot, article=True)


def resend_request(req, now, *, by="merchant"):
    """A person's explicit Resend: the last message the customer was sent goes out again
    at the next tick (spec §7: a re-send only through an explicit action).

    How it fits the at-most-once machinery: ``resend_count`` is part of the slot_sends key,
    so incrementing it gives slot k fresh rows, and ``next_slot``/``next_send_at`` point
    the dispatcher at slot k, due now. The reminder plan is kept: when the resend
    settles, ``settle_slot`` computes the following slot from the *first* ``sent_at`` as
    it always does, so a pending reminder k+1 is due again at its planned time (one
    already past due — e.g. the failed reminder of a failed request — goes at the tick
    after). ``reminder_count`` counts settled reminders: while reminder k is being sent
    again it reads k-1, so the campaign's maximum is not held against the resend, and
    settling puts it back to k.
    """
    db.session.refresh(req)
    if req.status not in RESENDABLE:
        raise ActionRefused(f"request {req.id} is {req.status}; only sent, clicked or failed requests can be resent")
    if req.submitted_at is not None:
        raise ActionRefused(f"request {req.id} was already submitted")
    if req.claimed_at is not None:
        raise ActionRefused(f"a send for request {req.id} is in progress; try again in a minute")
    slot = last_sent_slot(req.id)
    if slot is None:
        raise ActionRefused(
            f"nothing was sent for request {req.id} yet, so there is nothing to resend"
            + ("; use Retry" if req.status == FAILED else "")
        )
    if req.expires_at is not None and req.expires_at <= now:
        raise ActionRefused(f"request {req.id} expired at {req.expires_at:%Y-%m-%d %H:%M} UTC; it cannot be resent")
    target = CLICKED if req.clicked_at else SENT
    reminder_count = max(slot - 1, 0)
    campaign = req.campaign
    decision = policy.decide_slot(
        slot=slot,
        status=target,
        campaign_status=campaign.status,
        settings=policy.ReminderSettings.of(campaign),
        reminder_count=reminder_count,
        request_expires_at=req.expires_at,
        now=now,
    )
    if decision.action not in ("send", "hold"):  # hold: a paused campaign sends it after a resume
        raise ActionRefused(f"{slot_name(slot)} of request {req.id} cannot be resent: {decision.reason}")
    moved = transition(
        req.id,
        req.status,
        target,
        where=(TestimonialRequest.claimed_at.is_(None), TestimonialRequest.resend_count == req.resend_count),
        next_slot=slot,
        next_send_at=now,
        attempts=0,
        resend_count=req.resend_count + 1,
        reminder_count=reminder_count,
    )
    if not moved:
        raise ActionRefused(f"request {req.id} changed meanwhile; reload and try again")
    add_event(
        req.id,
        "resend_requested",
        now,
        slot=slot,
        detail=f"resend of {slot_name(slot)} requested by {by} (resend #{req.resend_count + 1})",
    )
    log.info("step=5 resend requested request=%s campaign=%s slot=%s by=%s", req.id, req.campaign_id, slot, by)
    db.session.refresh(req)
    return req


# -- correcting the customer's contact details (Requests Log) --------------------------------

CONTACT_EDITABLE = (SCHEDULED, SENT, CLICKED, FAILED)


class ContactInvalid(ValueError):
    """Contact details the merchant typed that cannot be used (a form error on ``field``)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


def clean_contact_details(req, email, phone):
    """The new (email, phone), normalised like intake stores them, or ContactInvalid.

    Validated with the intake's own rules (app.intake.schema EMAIL / E164, through the
    opt-out list's cleaner): e-mail lower-cased, phone in E.164 (spaces, dashes and
    brackets dropped). A channel the request uses cannot be left empty."""
    cleaned = {}
    for channel, field, value in (("email", "email", email), ("sms", "phone", phone)):
        value = (value or "").strip()
        if not value:
            if channel in req.channels:
                what = "an email address" if channel == "email" else "a phone number"
                raise ContactInvalid(
                    f"This request is sent by {'email' if channel == 'email' else 'SMS'}: it needs {what}.", field
                )
            cleaned[field] = None
            continue
        try:
            cleaned[field] = clean_contact(channel, value)
        except OptOutInvalid as exc:
            raise ContactInvalid(str(exc)[:1].upper() + str(exc)[1:] + ".", field) from None
    return cleaned["email"], cleaned["phone"]


def change_contact(req, now, *, email, phone, by="merchant"):
    """Correct the customer's e-mail address and/or phone number on an open request.

    Later sends (a Retry, the next reminder) go to the new details. Refused for a contact
    on the opt-out list, for a finished request and while a send is in flight. Records a
    ``contact_changed`` event (old → new, masked). Returns the list of changed fields."""

    db.session.refresh(req)
    if req.status not in CONTACT_EDITABLE:
        raise ActionRefused(f"request {req.id} is {req.status}, so its contact details can no longer be changed")
    if req.claimed_at is not None:
        raise ActionRefused(f"a send for request {req.id} is in progress; try again in a minute")
    new_email, new_phone = clean_contact_details(req, email, phone)
    changes = []
    for field, channel, old, new, mask in (
        ("email", "email", req.customer_email, new_email, mask_email),
        ("phone", "sms", req.customer_phone, new_phone, mask_phone),
    ):
        if new == old:
            continue
        if new is not None:
            blocked = db.session.scalar(select(OptOut).where(OptOut.channel == channel, OptOut.contact == new))
            if blocked is not None:
                raise ContactInvalid(
                    f"{new if channel == 'email' else mask_phone(new)} is on the opt-out list (since "
                    f"{blocked.created_at:%Y-%m-%d}, source: {blocked.source}): the customer asked not to be "
                    f"contacted there, so it cannot be used.",
                    field,
                )
        changes.append((field, mask(old) or "(none)", mask(new) or "(none)"))
    if not changes:
        raise ContactInvalid("These are the contact details the request already has: nothing to change.")
    moved = db.session.execute(
        update(TestimonialRequest)
        .where(
            TestimonialRequest.id == req.id,
            TestimonialRequest.status.in_(CONTACT_EDITABLE),
            TestimonialRequest.claimed_at.is_(None),
        )
        .values(customer_email=new_email, customer_phone=new_phone)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        raise ActionRefused(f"request {req.id} changed meanwhile; reload and try again")
    detail = "; ".join(f"{field} {old} → {new}" for field, old, new in changes) + f" (by {by})"
    add_event(req.id, "contact_changed", now, detail=detail)
    log.info(
        "contact changed request=%s campaign=%s fields=%s by=%s",
        req.id,
        req.campaign_id,
        ",".join(f for f, _, _ in changes),
        by,
    )
    db.session.refresh(req)
    return [field for field, _, _ in changes]
