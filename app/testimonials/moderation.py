"""The testimonial's moderation state machine: the statuses, the allowed moves, the one
function that makes a move, and the pure rules around it.

    pending → approved | rejected       (the merchant; or approved on arrival, see initial_status)
    approved ⇄ rejected, either → pending
    any → withdrawn                      (the customer, through their link)
    any → erased                         (the customer's contact was erased)

``featured`` is a flag beside the status: a featured testimonial is shown first, and only
when it is approved. A move is one ``UPDATE … WHERE id IN (…) AND status IN (allowed
sources)``: two merchants pressing buttons at once cannot resurrect a withdrawn one.

Only testimonials that are approved, carry the customer's consent and were neither
withdrawn nor erased are ever public (``public_clause``): the feed, the wall, the share
page and the media URLs all use that one condition.
"""

import logging

from sqlalchemy import and_, select, update

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.testimonials.models import Testimonial

log = logging.getLogger("app.testimonials")

PENDING, APPROVED, REJECTED, WITHDRAWN, ERASED = "pending", "approved", "rejected", "withdrawn", "erased"
STATUSES = (PENDING, APPROVED, REJECTED, WITHDRAWN, ERASED)
# The tabs of the Testimonials screen, in this order.
TABS = (PENDING, APPROVED, REJECTED, WITHDRAWN)

TRANSITIONS = {
    PENDING: {APPROVED, REJECTED, WITHDRAWN, ERASED},
    APPROVED: {REJECTED, PENDING, WITHDRAWN, ERASED},
    REJECTED: {APPROVED, PENDING, WITHDRAWN, ERASED},
    WITHDRAWN: {ERASED},
    ERASED: set(),
}
# What the merchant's buttons and `flask testimonials` do.
ACTIONS = {"approve": APPROVED, "reject": REJECTED}
FLAG_ACTIONS = {"feature": True, "unfeature": False}
ACTION_WORDS = {"approve": "approved", "reject": "rejected", "feature": "featured", "unfeature": "no longer featured"}
RATINGS = (1, 2, 3, 4, 5)


def sources_of(target):
    """The statuses from which a testimonial may move to ``target``."""
    return tuple(status for status, targets in TRANSITIONS.items() if target in targets)


def public_clause():
    """The condition every public view of testimonials uses."""
    return and_(
        Testimonial.status == APPROVED,
        Testimonial.consent.is_(True),
        Testimonial.withdrawn_at.is_(None),
        Testimonial.erased_at.is_(None),
    )


def filter_conditions(*, product_id=None, campaign_id=None, min_rating=None, has_video=None):
    """The filters the Testimonials screen and the public feed share (for a query joined
    to the testimonial's request); a filter left at None is not applied."""
    where = []
    if product_id:
        where.append(TestimonialRequest.product_id == product_id)
    if campaign_id:
        where.append(TestimonialRequest.campaign_id == campaign_id)
    if min_rating:
        where.append(Testimonial.rating >= min_rating)
    if has_video is not None:
        where.append(Testimonial.video_key.is_not(None) if has_video else Testimonial.video_key.is_(None))
    return where


def initial_status(auto_approve_min_rating, rating):
    """A new testimonial's status: approved when the campaign approves ratings this high."""
    if auto_approve_min_rating and rating is not None and rating >= auto_approve_min_rating:
        return APPROVED
    return PENDING


def move(ids, target, now, **values):
    """Move the testimonials ``ids`` to ``target`` where the table allows it; returns the
    ids that moved (the others were in a status that cannot move there). Flushes."""
    ids = sorted(set(ids))
    if not ids:
        return []
    movable = db.session.scalars(
        select(Testimonial.id).where(Testimonial.id.in_(ids), Testimonial.status.in_(sources_of(target)))
    ).all()
    if not movable:
        return []
    extra = {"moderated_at": now} if target in (APPROVED, REJECTED, PENDING) else {}
    if target != APPROVED:
        extra["featured"] = False
    result = db.session.execute(
        update(Testimonial)
        .where(Testimonial.id.in_(movable), Testimonial.status.in_(sources_of(target)))
        .values(status=target, **extra, **values)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != len(movable):  # another writer moved some in between: report what we did
        movable = db.session.scalars(
            select(Testimonial.id).where(Testimonial.id.in_(movable), Testimonial.status == target)
        ).all()
    log.info("testimonials %s → %s", ",".join(map(str, movable)), target)
    return list(movable)


def set_featured(ids, featured, now):
    """Feature (or stop featuring) testimonials. Featuring approves a pending one too: the
    merchant wants it shown first, and showing needs approval. Returns the ids changed."""
    ids = sorted(set(ids))
    if not ids:
        return []
    if featured:
        move(ids, APPROVED, now)
        allowed = (APPROVED,)
    else:
        allowed = (PENDING, APPROVED, REJECTED)
    changed = db.session.scalars(
        select(Testimonial.id).where(
            Testimonial.id.in_(ids), Testimonial.status.in_(allowed), Testimonial.featured.is_not(featured)
        )
    ).all()
    if changed:
        db.session.execute(
            update(Testimonial)
            .where(Testimonial.id.in_(changed))
            .values(featured=featured, moderated_at=now)
            .execution_options(synchronize_session="fetch")
        )
        log.info("testimonials %s featured=%s", ",".join(map(str, changed)), featured)
    # Already featured (or not) counts as done for the caller's report.
    return db.session.scalars(
        select(Testimonial.id).where(
            Testimonial.id.in_(ids), Testimonial.featured.is_(featured), Testimonial.status.in_(allowed)
        )
    ).all()


def apply_action(action, ids, now):
    """One of ACTIONS / FLAG_ACTIONS over ``ids``: (done ids, not done ids)."""
    if action in ACTIONS:
        done = move(ids, ACTIONS[action], now)
    elif action in FLAG_ACTIONS:
        done = set_featured(ids, FLAG_ACTIONS[action], now)
    else:
        raise ValueError(f"unknown action {action!r}")
    done = set(done)
    return sorted(done), sorted(set(ids) - done)


def display_name(testimonial):
    """What the public sees as the author: the customer's chosen name, else first name and
    last initial ("Ada L."), else "A customer"."""
    if testimonial.display_name:
        return testimonial.display_name
    req = testimonial.request
    first = (req.customer_first_name or "").strip()
    last = (req.customer_last_name or "").strip()
    if first:
        return f"{first} {last[0]}." if last else first
    return "A customer"
