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
"""

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from app.campaigns.models import Campaign
from app.campaigns.rendering import TemplateProblem, message_context, render_message
from app.extensions import db
from app.lifecycle import policy
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.lifecycle.states import (
    CANCELLED,
    CLICKED,
    EXPIRED,
    FAILED,
    QUEUED,
    SCHEDULED,
    SENDABLE,
    SENT,
    add_event,
    transition,
)
from app.optouts.models import opted_out_channels
from app.providers import OutgoingMessage, ProviderError, get_provider
from app.public.services import opt_out

log = logging.getLogger("app.lifecycle")

INTERRUPTED = "interrupted, outcome unknown"


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


# -- claiming ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    request_id: int
    campaign_id: int
    claim_id: str
    slot: int
    resend: int
    due_at: object
    messages: tuple  # (OutgoingMessage, provider name) pairs
    render_failures: tuple  # (channel, error text)


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


def claim_slot(request_id, now, report):
    """Decide and claim the request's due slot; returns a Claim or None."""
    req = db.session.get(TestimonialRequest, request_id)
    if req is None or req.status not in SENDABLE or req.claimed_at is not None:
        db.session.rollback()
        return None
    campaign = req.campaign
    slot, due_at, status = req.next_slot, req.next_send_at, req.status
    if due_at is None or due_at > now:
        db.session.rollback()
        return None
    decision = policy.decide_slot(
        slot=slot,
        status=status,
        campaign_status=campaign.status,
        settings=policy.ReminderSettings.of(campaign),
        reminder_count=req.reminder_count,
        request_expires_at=req.expires_at,
        now=now,
    )
    unchanged = (TestimonialRequest.next_send_at == due_at, TestimonialRequest.claimed_at.is_(None))
    if decision.action == "hold":  # paused since the tick picked it: left as it is, due after a resume
        db.session.rollback()
        log.info("step=5 held request=%s campaign=%s: %s", req.id, campaign.id, decision.reason)
        return None
    if decision.action == "expire":
        if transition(req.id, status, EXPIRED, where=unchanged, next_send_at=None):
            add_event(req.id, "expired", now, slot=slot, detail=decision.reason)
            report.expired += 1
            log.info("step=8 expired request=%s campaign=%s: %s", req.id, campaign.id, decision.reason)
        db.session.commit()
        return None
    if decision.action == "stop":
        db.session.execute(
            update(TestimonialRequest)
            .where(TestimonialRequest.id == req.id, *unchanged)
            .values(next_send_at=None)
        )
        db.session.commit()
        report.stopped += 1
        log.info("step=8 no further sends request=%s campaign=%s: %s", req.id, campaign.id, decision.reason)
        return None

    blocked = opted_out_channels(req.customer_email, req.customer_phone)
    channels = [c for c in req.channels if c not in blocked]
    if not channels:
        if transition(req.id, status, CANCELLED, where=unchanged, next_send_at=None, cancelled_at=now):
            add_event(req.id, "cancelled", now, slot=slot, detail="customer opted out")
            report.cancelled += 1
            log.info("step=5 cancelled request=%s campaign=%s: opted out", req.id, campaign.id)
        db.session.commit()
        return None
    if defer_to_send_window(req, campaign, channels, slot, unchanged, now, report):
        return None

    claim_id = uuid.uuid4().hex
    target = QUEUED if status == SCHEDULED else status
    won = transition(
        req.id,
        status,
        target,
        # The campaign is still active in the same statement: a pause committed since
        # the campaign was read (PostgreSQL reads committed rows) holds the slot too.
        where=(*unchanged, TestimonialRequest.next_slot == slot,
               TestimonialRequest.campaign_id.in_(select(Campaign.id).where(Campaign.status == "active"))),
        claimed_at=now,
        claim_id=claim_id,
    )
    if not won:
        db.session.rollback()
        report.lost_claims += 1
        return None

    messages, render_failures = [], []
    kind = "initial" if slot == 0 else "reminder"
    config = current_app.config
    context = message_context(req, shop_name=config["SHOP_NAME"], base_url=config["PUBLIC_BASE_URL"])
    for channel in channels:
        existing = db.session.scalar(
            select(SlotSend).where(
                SlotSend.request_id == req.id,
                SlotSend.slot == slot,
                SlotSend.channel == channel,
                SlotSend.resend == req.resend_count,
            )
        )
        # A channel already accepted for this slot, or refused for good, is not sent again.
        if existing is not None and (existing.status == "sent" or not existing.retryable):
            continue
        provider_name = get_provider(channel).name
        if existing is None:
            existing = SlotSend(
                request_id=req.id, slot=slot, channel=channel, resend=req.resend_count,
                attempts=0, started_at=now, due_at=due_at,
            )
            db.session.add(existing)
        existing.status, existing.provider, existing.attempts = "sending", provider_name, existing.attempts + 1
        existing.started_at, existing.error = now, None
        template = campaign.template_for(channel, kind)
        try:
            if template is None:
                raise TemplateProblem(f"the campaign has no {channel} {kind} template")
            subject, html, text = render_message(template, context)
        except TemplateProblem as exc:
            render_failures.append((channel, f"template error: {exc}"))
            continue
        to = req.customer_email if channel == "email" else req.customer_phone
        messages.append((
            OutgoingMessage(
                channel=channel, to=to, subject=subject, html=html, text=text,
                request_id=req.id, campaign_id=campaign.id, slot=slot,
                unsubscribe_url=context["unsubscribe_link"],
            ),
            provider_name,
        ))
    add_event(req.id, "queued", now, slot=slot, detail=f"{kind} message, channels: {', '.join(channels)}")
    # Built before the commit: touching an expired ORM object afterwards would open a
    # transaction (and, on SQLite, hold the write lock) while the provider is called.
    claim = Claim(req.id, campaign.id, claim_id, slot, req.resend_count, due_at, tuple(messages), ())
    db.session.commit()
    report.claimed += 1
    log.info("step=5 queued request=%s campaign=%s slot=%s channels=%s", claim.request_id, claim.campaign_id,
             slot, channels)
    for channel, error in render_failures:
        record_send_result(claim, channel, None, now, error=ProviderError(error, retryable=False, code="template"))
    return claim


def defer_to_send_window(req, campaign, channels, slot, unchanged, now, report):
    """Quiet hours: a slot due while a channel's send window is closed is not claimed; it
    moves to the moment all its channels may send, with a ``deferred`` event saying why.

    Channel "both" sends its channels together, so it waits until both windows are open
    (campaign validation keeps them overlapping). Returns True when the slot was deferred.
    """
    tz_name = current_app.config["SHOP_TIMEZONE"]
    tz = ZoneInfo(tz_name)
    windows = {}
    for channel in channels:
        try:
            windows[channel] = policy.SendWindow.parse(campaign.send_window(channel))
        except policy.WindowInvalid as exc:
            log.warning("campaign=%s has an unreadable %s send window, ignored: %s", campaign.id, channel, exc)
    restricting = [w for w in windows.values() if w is not None]
    opening = policy.defer_to_windows(now, restricting, tz)
    if opening is None:  # windows that never overlap (edited outside the app): follow the first
        opening = policy.defer_to_window(now, restricting[0], tz)
    if opening == now:
        return False
    closed = [f"{'SMS' if ch == 'sms' else 'email'} quiet hours {w.quiet_hours()}"
              for ch, w in windows.items() if w is not None and not policy.in_window(now, w, tz)]
    local = opening.astimezone(tz)
    detail = (f"{', '.join(closed)} {tz_name}; deferred to {local:%Y-%m-%d %H:%M} {local.tzname()} "
              f"({opening:%Y-%m-%d %H:%M} UTC)")
    moved = db.session.execute(
        update(TestimonialRequest).where(TestimonialRequest.id == req.id, *unchanged).values(next_send_at=opening)
    ).rowcount
    if moved:
        add_event(req.id, "deferred", now, slot=slot, detail=detail)
        report.deferred += 1
        log.info("step=5 deferred request=%s campaign=%s slot=%s: %s", req.id, campaign.id, slot, detail)
    db.session.commit()
    return True


# -- recording and settling -------------------------------------------------------------


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
