"""The request state machine: the statuses, the allowed moves, and the one function that
makes a move.

    scheduled → queued → sent → clicked → submitted
    terminal alternatives: failed, expired, cancelled (failed can be retried by a person)

A move is a conditional ``UPDATE … WHERE id = :id AND status = :expected``; the row count
says whether we won, so two workers can never both make the same move.
"""

from sqlalchemy import or_, update

from app.extensions import db
from app.lifecycle.models import TestimonialRequest, TestimonialRequestEvent

SCHEDULED, QUEUED, SENT, CLICKED, SUBMITTED = "scheduled", "queued", "sent", "clicked", "submitted"
FAILED, EXPIRED, CANCELLED = "failed", "expired", "cancelled"

STATUSES = (SCHEDULED, QUEUED, SENT, CLICKED, SUBMITTED, FAILED, EXPIRED, CANCELLED)
TERMINAL = frozenset({SUBMITTED, EXPIRED, CANCELLED})
# Statuses in which a request may still have a slot to send.
SENDABLE = (SCHEDULED, SENT, CLICKED)
CANCELLABLE = (SCHEDULED, QUEUED, SENT, CLICKED, FAILED)
# Statuses in which the customer's link still accepts a submission.
OPEN_FOR_SUBMISSION = (SCHEDULED, QUEUED, SENT, CLICKED, FAILED)

TRANSITIONS = {
    SCHEDULED: {QUEUED, CANCELLED, FAILED, SUBMITTED},
    # queued → scheduled: the initial send failed and will be retried later.
    QUEUED: {SENT, CLICKED, SCHEDULED, FAILED, CANCELLED, SUBMITTED},
    # sent → sent / clicked → clicked: a reminder slot was claimed or finished.
    SENT: {SENT, CLICKED, SUBMITTED, FAILED, EXPIRED, CANCELLED},
    CLICKED: {CLICKED, SUBMITTED, FAILED, EXPIRED, CANCELLED},
    # failed → scheduled/sent/clicked: a person pressed Retry.
    FAILED: {SCHEDULED, SENT, CLICKED, SUBMITTED, EXPIRED, CANCELLED},
    SUBMITTED: set(),
    EXPIRED: set(),
    CANCELLED: set(),
}


class TransitionError(Exception):
    """A move the state machine does not allow, or one another worker made first."""


def can_move(current, target):
    return target in TRANSITIONS.get(current, set())


def transition(request_id, expected, target, *, where=(), **values):
    """Move a request from ``expected`` to ``target`` and set ``values`` in one statement.

    ``expected`` may be a status or a tuple of statuses. Returns True when this call made
    the move; False when the row was no longer in an expected status (someone else
    moved it first). Raises TransitionError for a move the table does not allow.
    """
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    for status in expected:
        if not can_move(status, target):
            raise TransitionError(f"a request cannot move from {status} to {target}")
    result = db.session.execute(
        update(TestimonialRequest)
        .where(TestimonialRequest.id == request_id, TestimonialRequest.status.in_(expected), *where)
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def add_event(request_id, type_, occurred_at, **fields):
    """Append an event to a request's stream (flushes, never commits)."""
    event = TestimonialRequestEvent(request_id=request_id, type=type_, occurred_at=occurred_at, **fields)
    db.session.add(event)
    db.session.execute(
        update(TestimonialRequest)
        .where(
            TestimonialRequest.id == request_id,
            # Provider events arrive late and out of order: keep the latest time.
            or_(TestimonialRequest.last_event_at.is_(None), TestimonialRequest.last_event_at < occurred_at),
        )
        .values(last_event_at=occurred_at)
        .execution_options(synchronize_session=False)
    )
    return event
