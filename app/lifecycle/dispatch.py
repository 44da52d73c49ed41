"""Step 5 and steps 7–8: one dispatch tick sends every due slot once.

Delivery guarantee: **at most once** per (request, slot, channel). A tick works as
claim → send → record, each step in bulk:

1. one statement claims a batch of due slots, oldest first (a conditional UPDATE: two
   ticks, in one process or several, never both win a slot), and the same short
   transaction writes a ``sending`` row per channel in ``slot_sends`` — committed
   *before* any provider is called (claims.py);
2. a bounded pool of senders calls the providers with no database transaction open,
   within each channel's rate limit (sending.py);
3. the answers (message id or error) and their events are recorded in short batched
   transactions as they come in (spec §10), and each slot is settled once all its
   channels have answered (results.py).

The tick claims only as many slots as it has free senders, so every claimed slot is in a
provider call or about to be; it goes on claiming while slots are due, until its time
budget is spent.

A process that dies between 1 and 3 leaves claims behind. After ``SEND_LEASE_SECONDS``
the next tick marks those slots ``failed`` with "interrupted, outcome unknown": the
message may or may not have gone out, so it is never re-sent blindly; a person can press
Retry.
"""

import logging
import time
from dataclasses import asdict, dataclass, field

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.campaigns.models import ACTIVE, Campaign
from app.extensions import db
from app.lifecycle.claims import claim_due
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.results import Recorder, expire_due, recover_stale_claims
from app.lifecycle.sending import SendPool
from app.lifecycle.states import SENDABLE
from app.providers import get_provider

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
    deferred: int = 0  # due inside quiet hours: moved to the send window's opening
    left_for_next_tick: int = 0  # due, but the tick's time budget was spent (see dispatch_due)
    messages: int = 0
    errors: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


def dispatch_due(now, *, limit=None):
    """Run one tick at ``now``: recover stale claims, expire, send due slots.

    ``limit``: claim at most this many slots in this tick (default: all that are due,
    within the time budget)."""
    config = current_app.config
    batch = int(config["DISPATCH_BATCH_SIZE"])
    report = TickReport()
    recover_stale_claims(now, report)
    expire_due(now, report)
    report.due = count_due(now)
    db.session.commit()
    with SendPool(current_app._get_current_object(), config) as pool:
        drain(now, pool, Recorder(now, report), report, batch=batch, limit=limit)
    return report


def count_due(now):
    return db.session.scalar(
        select(func.count(TestimonialRequest.id))
        .join(Campaign, Campaign.id == TestimonialRequest.campaign_id)
        .where(
            TestimonialRequest.status.in_(SENDABLE),
            TestimonialRequest.next_send_at <= now,
            TestimonialRequest.claimed_at.is_(None),
            Campaign.status == ACTIVE,
        )
    )


def time_budget(config):
    """Every claim of a tick carries the tick's ``now``, and another process's tick judges
    a claim stale by it (the lease). A tick still claiming after the lease would see its
    own live claims marked "interrupted" by the other process, so it stops claiming after
    its budget (half the lease by default, real time elapsed); what is left is due at the
    next tick."""
    budget = config.get("DISPATCH_TIME_BUDGET_SECONDS")
    return config["SEND_LEASE_SECONDS"] / 2 if budget is None else budget


def drain(now, pool, recorder, report, *, batch, limit):
    """Claim as senders free up, hand over, record; returns the number of slots claimed.

    Once the budget is spent (or ``limit`` reached) nothing more is claimed and the slots
    in flight are recorded; a tick that has claimed nothing yet still claims one slot, so
    every tick makes progress."""
    budget = time_budget(current_app.config)
    deadline = time.monotonic() + budget
    claimed, skip, exhausted, stopped = 0, set(), False, False
    campaigns = {}  # the campaigns' facts, read once per tick
    while True:
        # A slot is one message or two (e-mail and SMS): claim for the worst case.
        room = min(max(pool.free // 2, 1 if pool.free else 0), batch, (limit - claimed) if limit else batch)
        if time.monotonic() >= deadline:
            room = 0 if claimed else min(room, 1)
        stopped = stopped or (room <= 0 and not exhausted and pool.free > 0)
        if room > 0 and not exhausted:
            taken = claim_batch(now, room, pool, recorder, report, skip, campaigns)
            claimed += taken
            exhausted = taken == 0
        if pool.busy:
            recorder.record(pool.answers())
            if pool.pending_crash is not None:
                raise pool.pending_crash
        elif exhausted or stopped:
            break
    if stopped and not exhausted:
        report.left_for_next_tick = max(count_due(now), 0)
        db.session.commit()
        if report.left_for_next_tick:
            log.warning(
                "step=5 tick time budget (%ss) spent: %s due slots left for the next tick",
                budget,
                report.left_for_next_tick,
            )
    return claimed


def claim_batch(now, size, pool, recorder, report, skip, campaigns):
    """One claim statement's worth: claim, record the render failures, hand over."""
    try:
        batch = claim_due(now, size, report, skip=tuple(skip), campaigns=campaigns)
    except SQLAlchemyError as exc:  # a database hiccup: the next tick tries again
        db.session.rollback()
        log.exception("step=5 could not claim due slots")
        report.errors.append({"request_id": None, "error": repr(exc)})
        return 0
    skip.update(batch.held)
    recorder.expect(batch.claims)
    for claim in batch.claims:
        for message, _provider in claim.messages:
            pool.submit(claim, message, get_provider(message.channel))
    return batch.rows
