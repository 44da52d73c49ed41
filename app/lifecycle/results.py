"""Step 5, second half, and steps 7–8: record each provider answer, settle the slot.

``record_send_result`` writes one channel's answer and its event in one transaction right
after the acknowledgement (spec §10); ``settle_slot`` releases the claim and moves the
request — sent (with the next reminder's time), retry with backoff, or failed with its
reason (spec §6). Housekeeping at the start of every tick: claims older than the lease
become "interrupted, outcome unknown" (never re-sent blindly), and requests past their
expiry stop for good.
"""

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.lifecycle import policy
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.lifecycle.states import CLICKED, EXPIRED, FAILED, QUEUED, SCHEDULED, SENT, add_event, transition
from app.public.services import opt_out

log = logging.getLogger("app.lifecycle")

INTERRUPTED = "interrupted, outcome unknown"


def record_send_result(claim, channel, provider_name, now, *, message_id=None, error=None):
    """Write the provider's answer for one channel, with its event, in one transaction."""
    values = {"finished_at": now}
    if error is None:
        values.update(status="sent", provider_message_id=message_id, error=None)
    else:
        values.update(status="failed", error=str(error), retryable=error.retryable)
    db.session.execute(
        update(SlotSend)
        .where(
            SlotSend.request_id == claim.request_id,
            SlotSend.slot == claim.slot,
            SlotSend.channel == channel,
            SlotSend.resend == claim.resend,
            SlotSend.status == "sending",
        )
        .values(**values)
    )
    if error is None:
        db.session.execute(
            update(TestimonialRequest)
            .where(TestimonialRequest.id == claim.request_id)
            .values({f"{channel}_message_id": message_id})
        )
        add_event(claim.request_id, "sent", now, channel=channel, slot=claim.slot,
                  provider=provider_name, provider_message_id=message_id)
        log.info("step=5 sent request=%s campaign=%s slot=%s channel=%s provider=%s id=%s",
                 claim.request_id, claim.campaign_id, claim.slot, channel, provider_name, message_id)
    else:
        # The event is the record: add_event keeps the request's last_error (every channel's
        # current failure) from it.
        add_event(claim.request_id, "failed", now, channel=channel, slot=claim.slot,
                  provider=provider_name, error_code=str(error.code) if error.code else None,
                  detail=str(error))
        log.warning("step=5 failed request=%s campaign=%s slot=%s channel=%s provider=%s: %s",
                    claim.request_id, claim.campaign_id, claim.slot, channel, provider_name, error)
        if error.opt_out:
            # The provider knows the recipient unsubscribed (Twilio 21610): suppress the
            # contact for every campaign, atomically with the failure it explains.
            to = next(m.to for m, _ in claim.messages if m.channel == channel)
            opt_out(channel, to, now, source=f"{provider_name}_{error.code}", detail=f"request {claim.request_id}")
    db.session.commit()


def settle_slot(request_id, claim_id, now, report):
    """Release the claim and move the request according to its channels' results."""
    req = db.session.get(TestimonialRequest, request_id)
    db.session.refresh(req)
    if req.claim_id != claim_id:
        db.session.rollback()
        return False
    slot = req.next_slot
    rows = db.session.scalars(
        select(SlotSend).where(
            SlotSend.request_id == req.id, SlotSend.slot == slot, SlotSend.resend == req.resend_count
        )
    ).all()
    mine = TestimonialRequest.claim_id == claim_id
    release = {"claimed_at": None, "claim_id": None}
    campaign = req.campaign
    status = req.status

    if any(r.status == "sent" for r in rows):
        # When the provider accepted it: the same as ``now`` right after the send, earlier
        # when a later tick settles a claim whose process died after recording the answer.
        accepted_at = min((r.finished_at for r in rows if r.status == "sent" and r.finished_at), default=now)
        first_sent_at = req.sent_at or accepted_at
        values = dict(release, attempts=0, last_sent_at=accepted_at, sent_at=first_sent_at)
        if slot == 0:
            values["expires_at"] = policy.expires_at(first_sent_at, campaign.expire_after_days)
        else:
            values["reminder_count"] = max(req.reminder_count, slot)
        following = policy.next_slot_after(slot, first_sent_at, policy.ReminderSettings.of(campaign),
                                           last_sent_at=accepted_at)
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
            log.info("step=%s slot sent request=%s campaign=%s slot=%s next=%s",
                     5 if slot == 0 else 7, req.id, campaign.id, slot, values["next_send_at"])
        else:
            _release_only(req.id, claim_id)  # cancelled or submitted meanwhile: keep that
        db.session.commit()
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
            log.info("step=5 retry scheduled request=%s campaign=%s slot=%s attempt=%s due=%s",
                     req.id, campaign.id, slot, attempts + 1, due.isoformat())
    else:
        # A template that cannot be rendered never reached a provider: say so.
        broken = [f"{r.channel} template: {r.error.split('template error: ', 1)[-1]}"
                  for r in rows if r.error and "template error: " in r.error]
        if any((r.error or "").startswith(INTERRUPTED) for r in rows):
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
    db.session.commit()
    return settled


def _release_only(request_id, claim_id):
    return db.session.execute(
        update(TestimonialRequest)
        .where(TestimonialRequest.id == request_id, TestimonialRequest.claim_id == claim_id)
        .values(claimed_at=None, claim_id=None, next_send_at=None)
    ).rowcount == 1


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
            select(SlotSend).where(SlotSend.request_id == request_id, SlotSend.status == "sending")
        ).all()
        for row in interrupted:
            # Another tick may be recovering the same claim: only the one that moves the row records it.
            moved = db.session.execute(
                update(SlotSend).where(SlotSend.id == row.id, SlotSend.status == "sending")
                .values(status="failed", error=INTERRUPTED, retryable=False, finished_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not moved:
                continue
            add_event(request_id, "failed", now, channel=row.channel, slot=row.slot,
                      provider=row.provider, error_code="interrupted",
                      detail=f"{INTERRUPTED}: the sending process stopped before the provider's answer was "
                             f"recorded (claimed at {req.claimed_at:%Y-%m-%d %H:%M:%S} UTC)")
        db.session.commit()
        if settle_slot(request_id, claim_id, now, report):
            log.warning("step=5 recovered stale claim request=%s campaign=%s", request_id, req.campaign_id)
            report.recovered += 1


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
        if transition(request_id, (SENT, CLICKED), EXPIRED, where=(TestimonialRequest.claimed_at.is_(None),),
                      next_send_at=None):
            add_event(request_id, "expired", now, detail="no submission before the request expired")
            report.expired += 1
            log.info("step=8 expired request=%s campaign=%s", request_id, campaign_id)
    db.session.commit()
