"""Step 5 and steps 7–8: one dispatch tick sends every due slot once.

Delivery guarantee: **at most once** per (request, slot, channel). A tick

1. claims a due request with a conditional UPDATE (two ticks never both win) and writes
   a ``sending`` row per channel in ``slot_sends`` — committed *before* the provider is
   called;
2. calls the provider with no database transaction open;
3. records the provider's answer (message id or error) and the event in one short
   transaction right after the acknowledgement (spec §10), then settles the request.

A process that dies between 1 and 3 leaves a claim behind. After ``SEND_LEASE_SECONDS``
the next tick marks that slot ``failed`` with "interrupted, outcome unknown": the message
may or may not have gone out, so it is never re-sent blindly; a person can press Retry.

This module is the tick; ``claims.py`` decides and claims one slot (step 1), and
``results.py`` records the answers, settles the slot and does the housekeeping (step 3).
"""

import logging
import time
from dataclasses import asdict, dataclass, field

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.campaigns.models import Campaign
from app.extensions import db
from app.lifecycle.claims import claim_slot
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.results import expire_due, record_send_result, recover_stale_claims, settle_slot
from app.lifecycle.states import FAILED, SENDABLE, add_event, transition
from app.providers import ProviderError, get_provider

log = logging.getLogger("app.lifecycle")


@dataclass
class TickReport:
    due: int = 0
    claimed: int = 0
    sent: int = 0
    retry_scheduled: int = 0
    failed: int = 0
    expired: int = 0
    stopped: int = 0
    cancelled: int = 0
    recovered: int = 0
    lost_claims: int = 0
    deferred: int = 0  # due inside quiet hours: moved to the send window's opening
    left_for_next_tick: int = 0  # due, but the tick's time budget was spent (see dispatch_due)
    messages: int = 0
    errors: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


def dispatch_due(now, *, limit=None):
    """Run one tick at ``now``: recover stale claims, expire, send due slots."""
    config = current_app.config
    report = TickReport()
    recover_stale_claims(now, report)
    expire_due(now, report)
    batch = limit or config["DISPATCH_BATCH_SIZE"]
    due = db.session.execute(
        select(TestimonialRequest.id)
        .join(Campaign, Campaign.id == TestimonialRequest.campaign_id)
        .where(
            TestimonialRequest.status.in_(SENDABLE),
            TestimonialRequest.next_send_at <= now,
            TestimonialRequest.claimed_at.is_(None),
            # Paused campaigns hold their slots until resumed; drafts never send.
            Campaign.status == "active",
        )
        .order_by(TestimonialRequest.next_send_at, TestimonialRequest.id)
        .limit(batch)
    ).scalars().all()
    db.session.commit()
    report.due = len(due)
    # Every claim of this tick carries the tick's ``now``, and another process's tick
    # judges a claim stale by it (the lease). A tick still claiming after the lease (a big
    # batch of slow provider calls) would see its own live claims marked "interrupted" by
    # the other process, so it stops claiming after half the lease (real time elapsed);
    # what is left is due at the next tick.
    budget = config.get("DISPATCH_TIME_BUDGET_SECONDS")
    if budget is None:
        budget = config["SEND_LEASE_SECONDS"] / 2
    deadline = time.monotonic() + budget
    for index, request_id in enumerate(due):
        if index and time.monotonic() >= deadline:
            report.left_for_next_tick = len(due) - index
            log.warning("step=5 tick time budget (%ss) spent: %s due slots left for the next tick",
                        budget, report.left_for_next_tick)
            break
        try:
            send_due_slot(request_id, now, report)
        except Exception as exc:  # one bad request must not stop the others' sends
            db.session.rollback()
            log.exception("step=5 dispatch error request=%s", request_id)
            report.errors.append({"request_id": request_id, "error": repr(exc)})
            if not isinstance(exc, SQLAlchemyError):  # a database hiccup: the next tick tries again
                fail_unprepared(request_id, now, exc, report)
    return report


def fail_unprepared(request_id, now, exc, report):
    """A slot that could not even be prepared (an unknown provider, a bug in rendering)
    fails with the reason on the request (spec §6), instead of staying due and failing
    silently at every tick. Only an unclaimed slot: nothing was handed to a provider. A
    claimed one may have gone out; the stale-claim rule records it after the lease."""
    try:
        req = db.session.get(TestimonialRequest, request_id)
        if req is None or req.status not in SENDABLE or req.claimed_at is not None or req.next_send_at is None:
            db.session.rollback()
            return
        error = ProviderError(f"could not prepare the message: {exc!r}", retryable=False, code="internal")
        slot, channels = req.next_slot, req.channels
        if transition(req.id, req.status, FAILED,
                      where=(TestimonialRequest.claimed_at.is_(None), TestimonialRequest.next_send_at == req.next_send_at),
                      attempts=req.attempts + 1, next_send_at=None):
            for channel in channels:
                add_event(req.id, "failed", now, channel=channel, slot=slot, error_code=error.code, detail=str(error))
            add_event(req.id, "failed", now, slot=slot, detail=f"request failed: {error.message}; use Retry to send again")
            report.failed += 1
            log.warning("step=5 request failed request=%s campaign=%s slot=%s: %s", req.id, req.campaign_id, slot,
                        error)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("step=5 could not record the failure of request=%s", request_id)


def send_due_slot(request_id, now, report):
    claim = claim_slot(request_id, now, report)
    if claim is None:
        return
    # No transaction may stay open while a provider is called (seconds, on a network).
    assert not db.session().in_transaction(), "provider called inside a database transaction"
    for message, provider_name in claim.messages:
        try:
            provider_message_id = get_provider(message.channel).send(message)
        except ProviderError as exc:
            record_send_result(claim, message.channel, provider_name, now, error=exc)
        except Exception as exc:  # a provider bug must not kill the tick or vanish
            log.exception("provider %s raised unexpectedly", provider_name)
            # It may have raised after handing the message over: never re-sent on its own.
            error = ProviderError(f"unexpected provider error: {exc!r}", retryable=False, outcome_unknown=True)
            record_send_result(claim, message.channel, provider_name, now, error=error)
        else:
            record_send_result(claim, message.channel, provider_name, now, message_id=provider_message_id)
        report.messages += 1
    settle_slot(claim.request_id, claim.claim_id, now, report)
