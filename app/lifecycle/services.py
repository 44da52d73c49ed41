"""Request actions that are not the dispatch tick: click, submit, cancel, retry.

Service functions flush and never commit: the caller (a view, a CLI command) owns the
transaction boundary.
"""

import logging

from sqlalchemy import select

from app.extensions import db
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.lifecycle.states import (
    CANCELLABLE,
    CANCELLED,
    CLICKED,
    FAILED,
    OPEN_FOR_SUBMISSION,
    SCHEDULED,
    SENT,
    SUBMITTED,
    TERMINAL,
    add_event,
    transition,
)

log = logging.getLogger("app.lifecycle")


class ActionRefused(ValueError):
    """A person asked for something the request's state does not allow (a 409)."""


def find_by_token(token):
    return db.session.scalar(select(TestimonialRequest).where(TestimonialRequest.token == token))


def record_click(req, now, *, detail=None):
    """The customer opened their link (step 6). Repeat opens are not recorded again."""
    first = db.session.execute(
        TestimonialRequest.__table__.update()
        .where(TestimonialRequest.id == req.id, TestimonialRequest.clicked_at.is_(None))
        .values(clicked_at=now)
    ).rowcount
    if not first:
        return False
    transition(req.id, SENT, CLICKED)  # only a sent request changes status
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
            SlotSend.status == "failed",
        )
        .values(retryable=True)
    )
    add_event(req.id, "retried", now, slot=req.next_slot, detail=f"retry requested by {by}")
    log.info("step=5 retry requested request=%s campaign=%s slot=%s by=%s", req.id, req.campaign_id,
             req.next_slot, by)
    db.session.refresh(req)
    return req


def is_terminal(req):
    return req.status in TERMINAL


def link_for(req):
    from flask import current_app

    return f"{current_app.config['PUBLIC_BASE_URL']}/r/{req.token}"
