"""Step 5, second half, and steps 7–8: record each provider answer, settle the slot.

``record_send_result`` writes one channel's answer and its event in one transaction right
after the acknowledgement (spec §10); ``settle_slot`` releases the claim and moves the
request — sent (with the next reminder's time), retry with backoff, or failed with its
reason (spec §6). Housekeeping at the start of every tick: claims older than the lease
become "interrupted, outcome unknown" (never re-sent blindly), and requests past their
expiry stop for good.
"""

import dataclasses
import logging
import time
from datetime import timedelta
from types import SimpleNamespace

from blinker import Namespace
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from app.bulk import update_rows
from app.extensions import db
from app.lifecycle import policy
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.lifecycle.states import (
    CLICKED,
    EXPIRED,
    FAILED,
    QUEUED,
    SCHEDULED,
    SENT,
    add_event,
    add_events,
    transition,
    transition_each,
)
from app.providers.base import INTERRUPTED as KIND_INTERRUPTED
from app.providers.base import TEMPLATE, Failure

log = logging.getLogger("app.lifecycle")

INTERRUPTED = "interrupted, outcome unknown"
INTERRUPTED_MESSAGE = "the sending process stopped before the provider's answer was recorded"

send_refused = Namespace().signal(
    "send-refused",
    doc="Sent by ``record_send_result`` for each send a provider refused, with the failure "
    "(``app.providers.base.Failure``) as sender and ``contact`` (the address or number it went "
    "to, or None), ``now``, ``request_id``; inside the transaction that records the failure. "
    "The tick only reports: the suppression list acts on an opt-out (connected in "
    "``app.create_app``).",
)


class Recorder:
    """Records the answers of one tick's claims as they come in, a batch per transaction:
    first each channel's answer with its event, then the settlement of every slot whose
    channels have all answered.

    Every batch writes in the same order (answers by campaign, kind, outcome, provider and
    channel, then settlements by request), so the per-day counters the triggers keep are
    locked in the same order by every process; on PostgreSQL a deadlock or serialisation
    failure that still happens is retried — the answers are in memory, never dropped."""

    def __init__(self, now, report):
        self.now, self.report = now, report
        self.waiting = {}  # request id → channels still to answer
        self.refused = set()  # request ids with a channel not accepted

    def expect(self, claims):
        """Claims just committed: their render failures are answers already."""
        answers = [
            SimpleNamespace(claim=c, channel=ch, provider=None, message_id=None, error=e)
            for c in claims
            for ch, e in c.render_failures
        ]
        for claim in claims:
            self.waiting[claim.request_id] = len(claim.messages) + len(claim.render_failures)
        # Nothing to hand over at all (every channel already accepted or refused for good).
        idle = [c for c in claims if not c.messages and not c.render_failures]
        if answers or idle:
            self.record(answers, count=False, idle=idle)

    def record(self, answers, *, count=True, idle=()):
        answers = sorted(answers, key=_lock_order)
        waiting, refused = dict(self.waiting), set(self.refused)
        for answer in answers:
            waiting[answer.claim.request_id] -= 1
            if answer.error is not None:
                refused.add(answer.claim.request_id)
        complete = {a.claim.request_id: a.claim for a in answers if not waiting[a.claim.request_id]}
        complete = sorted({**complete, **{c.request_id: c for c in idle}}.items())

        def write():
            record_accepted([a for a in answers if a.error is None], self.now)
            for answer in answers:
                if answer.error is not None:
                    record_send_result(answer.claim, answer.channel, answer.provider, self.now, error=answer.error)
            clean = [
                c for request_id, c in complete if c.messages and not c.render_failures and request_id not in refused
            ]
            settled = settle_sent(clean, self.now, self.report)
            for request_id, claim in complete:
                if request_id not in settled:
                    settle_slot(request_id, claim.claim_id, self.now, self.report)

        committed(write, self.report)
        for request_id, _ in complete:
            del waiting[request_id]
            refused.discard(request_id)
        self.waiting, self.refused = waiting, refused
        if count:
            self.report.messages += len(answers)


def _lock_order(answer):
    claim = answer.claim
    return (
        claim.campaign_id,
        claim.slot > 0,
        answer.error is None,
        answer.provider or "",
        answer.channel,
        claim.request_id,
    )


CONFLICTS = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialisation failure


def committed(write, report, *, attempts=5):
    """Run ``write()`` and commit; a PostgreSQL deadlock or serialisation failure rolls
    back (the report's counts with it) and runs it again, a few times, after a pause."""
    for attempt in range(attempts):
        before = dataclasses.replace(report, errors=list(report.errors))
        try:
            result = write()
            db.session.commit()
            return result
        except OperationalError as exc:
            db.session.rollback()
            if attempt == attempts - 1 or getattr(exc.orig, "sqlstate", None) not in CONFLICTS:
                raise
            log.warning("step=5 write conflict (%s), trying again", exc.orig.sqlstate)
            for name in dataclasses.asdict(before):
                setattr(report, name, getattr(before, name))
            time.sleep(0.02 * (attempt + 1))


def record_send_result(claim, channel, provider_name, now, *, message_id=None, error=None):
    """Write the provider's answer for one channel, with its event (flushes, never commits)."""
    values = {"finished_at": now}
    if error is None:
        values.update(
            status=SlotSend.SENT, provider_message_id=message_id, error=None, error_code=None, error_kind=None
        )
    else:
        failure = error.failure(channel, provider_name)
        values.update(
            status=SlotSend.FAILED,
            error=failure.message,
            error_code=failure.code,
            error_kind=failure.kind,
            retryable=failure.retryable,
        )
    db.session.execute(
        update(SlotSend)
        .where(
            SlotSend.request_id == claim.request_id,
            SlotSend.slot == claim.slot,
            SlotSend.channel == channel,
            SlotSend.resend == claim.resend,
            SlotSend.status == SlotSend.SENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if error is None:
        standing = db.session.execute(
            update(TestimonialRequest)
            .where(TestimonialRequest.id == claim.request_id)
            .values({f"{channel}_message_id": message_id})
            .returning(TestimonialRequest.email_failure_id, TestimonialRequest.sms_failure_id)
            .execution_options(synchronize_session=False)
        ).first()
        standing = None if standing is None or standing == (None, None) else standing
        # No failure stands on the request: a success has nothing to clear.
        add_event(
            claim.request_id,
            "sent",
            now,
            channel=channel,
            slot=claim.slot,
            provider=provider_name,
            provider_message_id=message_id,
            known_clean=standing is None,
        )
        log.info(
            "step=5 sent request=%s campaign=%s slot=%s channel=%s provider=%s id=%s",
            claim.request_id,
            claim.campaign_id,
            claim.slot,
            channel,
            provider_name,
            message_id,
        )
    else:
        # The event is the record: add_event keeps the request's standing failures (every
        # channel's current failure) from it.
        add_failed_event(claim.request_id, claim.slot, failure, now)
        log.warning(
            "step=5 failed request=%s campaign=%s slot=%s channel=%s provider=%s: %s",
            claim.request_id,
            claim.campaign_id,
            claim.slot,
            channel,
            provider_name,
            error,
        )
        # The refusal as data, for whoever acts on it in this transaction: the suppression
        # list takes a contact the provider knows unsubscribed (Twilio 21610; connected in
        # the app factory), which cancels that contact's pending requests.
        to = next((m.to for m, _ in claim.messages if m.channel == channel), None)
        send_refused.send(failure, contact=to, now=now, request_id=claim.request_id)


def add_failed_event(request_id, slot, failure, now):
    """A channel's ``failed`` event: the failure as data (flushes)."""
    return add_event(
        request_id,
        "failed",
        now,
        channel=failure.channel,
        slot=slot,
        provider=failure.provider,
        error_code=failure.code,
        detail=failure.message,
        retryable=failure.retryable,
        error_kind=failure.kind,
    )


def record_accepted(answers, now):
    """The providers accepted these messages: their rows, message ids and ``sent`` events,
    a few statements for the whole batch (flushes)."""
    if not answers:
        return
    connection = db.session.connection()
    sends = SlotSend.__table__
    update_rows(
        connection,
        sends,
        ["request_id", "slot", "channel", "resend"],
        [
            {
                "request_id": a.claim.request_id,
                "slot": a.claim.slot,
                "channel": a.channel,
                "resend": a.claim.resend,
                "provider_message_id": a.message_id,
            }
            for a in answers
        ],
        where={"status": SlotSend.SENDING},
        status=SlotSend.SENT,
        error=None,
        error_code=None,
        error_kind=None,
        finished_at=now,
    )
    for channel in ("email", "sms"):
        ids = [
            {"id": a.claim.request_id, f"{channel}_message_id": a.message_id} for a in answers if a.channel == channel
        ]
        update_rows(connection, TestimonialRequest.__table__, ["id"], ids)
    add_events(
        [
            {
                "request_id": a.claim.request_id,
                "type": "sent",
                "occurred_at": now,
                "channel": a.channel,
                "slot": a.claim.slot,
                "provider": a.provider,
                "provider_message_id": a.message_id,
            }
            for a in answers
        ]
    )
    for a in answers:
        log.info(
            "step=5 sent request=%s campaign=%s slot=%s channel=%s provider=%s id=%s",
            a.claim.request_id,
            a.claim.campaign_id,
            a.claim.slot,
            a.channel,
            a.provider,
            a.message_id,
        )


def settle_sent(claims, now, report):
    """The common case, from what each claim read: every channel was accepted just now.
    One statement per kind of move; returns the request ids settled. A request that
    changed meanwhile (a click, a cancel) is left to ``settle_slot``, which reads it again."""
    groups = {}
    for claim in claims:
        row, campaign, slot = claim.row, claim.campaign, claim.slot
        first_sent_at = row.sent_at or now
        move = {
            "id": row.id,
            "expected": claim.status,
            "claim_id": None,
            "claimed_at": None,
            "attempts": 0,
            "last_sent_at": now,
            "sent_at": first_sent_at,
        }
        if slot == 0:
            move["expires_at"] = policy.expires_at(first_sent_at, campaign.expire_after_days)
        else:
            move["reminder_count"] = max(row.reminder_count, slot)
        following = policy.next_slot_after(slot, first_sent_at, campaign.settings, last_sent_at=now)
        move["next_slot"], move["next_send_at"] = following if following else (slot + 1, None)
        clicked = row.clicked_at is not None
        move["target"] = CLICKED if claim.status == CLICKED or (claim.status == QUEUED and clicked) else SENT
        groups.setdefault((slot == 0, clicked, claim.claim_id), []).append((claim, move))
    settled = set()
    for (_, clicked, claim_id), moves in groups.items():
        # Still our claim, and no click since it was read (that makes it "clicked").
        unchanged = (
            TestimonialRequest.__table__.c.claim_id == claim_id,
            TestimonialRequest.__table__.c.clicked_at.is_not(None)
            if clicked
            else TestimonialRequest.__table__.c.clicked_at.is_(None),
        )
        won = transition_each([move for _, move in moves], where=unchanged)
        for claim, move in moves:
            if claim.request_id in won:
                report.sent += 1
                log.info(
                    "step=%s slot sent request=%s campaign=%s slot=%s next=%s",
                    5 if claim.slot == 0 else 7,
                    claim.request_id,
                    claim.campaign_id,
                    claim.slot,
                    move["next_send_at"],
                )
        settled |= won
    return settled


def settle_slot(request_id, claim_id, now, report):
    """Release the claim and move the request according to its channels' results
    (flushes, never commits)."""
    req = db.session.get(TestimonialRequest, request_id)
    db.session.refresh(req)
    if req.claim_id != claim_id:
        return False
    slot = req.next_slot
    rows = db.session.scalars(
        select(SlotSend)
        .where(SlotSend.request_id == req.id, SlotSend.slot == slot, SlotSend.resend == req.resend_count)
        .execution_options(populate_existing=True)
    ).all()
    mine = TestimonialRequest.claim_id == claim_id
    release = {"claimed_at": None, "claim_id": None}
    campaign = req.campaign
    status = req.status

    if any(r.status == SlotSend.SENT for r in rows):
        # When the provider accepted it: the same as ``now`` right after the send, earlier
        # when a later tick settles a claim whose process died after recording the answer.
        accepted_at = min((r.finished_at for r in rows if r.status == SlotSend.SENT and r.finished_at), default=now)
        first_sent_at = req.sent_at or accepted_at
        values = dict(release, attempts=0, last_sent_at=accepted_at, sent_at=first_sent_at)
        if slot == 0:
            values["expires_at"] = policy.expires_at(first_sent_at, campaign.expire_after_days)
        else:
            values["reminder_count"] = max(req.reminder_count, slot)
        following = policy.next_slot_after(
            slot, first_sent_at, policy.ReminderSettings.of(campaign), last_sent_at=accepted_at
        )
        values["next_slot"], values["next_send_at"] = following if following else (slot + 1, None)
        for _ in range(2):
            # The customer may click while the slot is in flight (sent → clicked): that
            # changes the expected status, not the outcome; read it again and settle.
            target = CLICKED if status == CLICKED or (status == QUEUED and req.clicked_at) else SENT
            won = status in (QUEUED, SENT, CLICKED) and transition(req.id, status, target, where=(mine,), **values)
            if won or status not in (QUEUED, SENT, CLICKED):
                break
            db.session.refresh(req)
            status = req.status
        if won:
            report.sent += 1
            log.info(
                "step=%s slot sent request=%s campaign=%s slot=%s next=%s",
                5 if slot == 0 else 7,
                req.id,
                campaign.id,
                slot,
                values["next_send_at"],
            )
        else:
            _release_only(req.id, claim_id)  # cancelled or submitted meanwhile: keep that
        return True

    attempts = req.attempts + 1
    retryable = any(r.retryable for r in rows)
    max_attempts = current_app.config["MAX_SEND_ATTEMPTS"]
    if status not in (QUEUED, SENT, CLICKED):
        settled = _release_only(req.id, claim_id)
    elif policy.should_retry(retryable, attempts, max_attempts):
        due = policy.retry_due_at(now, attempts, current_app.config["RETRY_BASE_SECONDS"])
        back = SCHEDULED if status == QUEUED else status
        settled = transition(req.id, status, back, where=(mine,), attempts=attempts, next_send_at=due, **release)
        if settled:
            report.retry_scheduled += 1
            log.info(
                "step=5 retry scheduled request=%s campaign=%s slot=%s attempt=%s due=%s",
                req.id,
                campaign.id,
                slot,
                attempts + 1,
                due.isoformat(),
            )
    else:
        # A template that cannot be rendered never reached a provider: say so.
        broken = [f"{r.channel} template: {r.error}" for r in rows if r.error_kind == TEMPLATE]
        if any(r.error_kind == KIND_INTERRUPTED for r in rows):
            why = INTERRUPTED
        elif broken:
            why = "template error in the " + "; ".join(broken)
        elif not retryable:
            why = "the provider refused the message permanently"
        else:
            why = f"gave up after {attempts} attempts"
        settled = transition(req.id, status, FAILED, where=(mine,), attempts=attempts, next_send_at=None, **release)
        if settled:  # another tick recovering the same claim may have settled it first
            add_event(req.id, "failed", now, slot=slot, detail=f"request failed: {why}; use Retry to send again")
            report.failed += 1
            log.warning("step=5 request failed request=%s campaign=%s slot=%s: %s", req.id, campaign.id, slot, why)
    return settled


def _release_only(request_id, claim_id):
    return (
        db.session.execute(
            update(TestimonialRequest)
            .where(TestimonialRequest.id == request_id, TestimonialRequest.claim_id == claim_id)
            .values(claimed_at=None, claim_id=None, next_send_at=None)
        ).rowcount
        == 1
    )


# -- housekeeping -----------------------------------------------------------------------


def recover_stale_claims(now, report):
    """Claims older than the lease belong to a process that died mid-send."""
    cutoff = now - timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    stale = db.session.execute(
        select(TestimonialRequest.id, TestimonialRequest.claim_id).where(
            TestimonialRequest.claimed_at.is_not(None), TestimonialRequest.claimed_at < cutoff
        )
    ).all()
    db.session.commit()
    for request_id, claim_id in stale:
        req = db.session.get(TestimonialRequest, request_id)
        interrupted = db.session.scalars(
            select(SlotSend).where(SlotSend.request_id == request_id, SlotSend.status == SlotSend.SENDING)
        ).all()
        for row in interrupted:
            # Another tick may be recovering the same claim: only the one that moves the row records it.
            moved = db.session.execute(
                update(SlotSend)
                .where(SlotSend.id == row.id, SlotSend.status == SlotSend.SENDING)
                .values(
                    status=SlotSend.FAILED,
                    error=INTERRUPTED_MESSAGE,
                    error_code="interrupted",
                    error_kind=KIND_INTERRUPTED,
                    retryable=False,
                    finished_at=now,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if not moved:
                continue
            failure = Failure(
                channel=row.channel,
                provider=row.provider,
                code="interrupted",
                retryable=False,
                message=f"{INTERRUPTED_MESSAGE} (claimed at {req.claimed_at:%Y-%m-%d %H:%M:%S} UTC)",
                kind=KIND_INTERRUPTED,
            )
            add_failed_event(request_id, row.slot, failure, now)
        if settle_slot(request_id, claim_id, now, report):
            log.warning("step=5 recovered stale claim request=%s campaign=%s", request_id, req.campaign_id)
            report.recovered += 1
        db.session.commit()


def expire_due(now, report):
    """Requests not submitted by their expiry time stop for good (spec §2)."""
    due = db.session.execute(
        select(TestimonialRequest.id, TestimonialRequest.campaign_id).where(
            TestimonialRequest.status.in_((SENT, CLICKED)),
            TestimonialRequest.expires_at <= now,
            TestimonialRequest.claimed_at.is_(None),
        )
    ).all()
    for request_id, campaign_id in due:
        if transition(
            request_id, (SENT, CLICKED), EXPIRED, where=(TestimonialRequest.claimed_at.is_(None),), next_send_at=None
        ):
            add_event(request_id, "expired", now, detail="no submission before the request expired")
            report.expired += 1
            log.info("step=8 expired request=%s campaign=%s", request_id, campaign_id)
    db.session.commit()
