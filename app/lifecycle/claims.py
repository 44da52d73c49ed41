"""Step 5, first half: decide a due slot and claim it (dispatch.py runs the tick).

The decision is the pure ``policy.decide_slot`` (hold, expire, stop or send); an opted-out
contact is dropped, quiet hours defer the slot, and only then does a conditional UPDATE
claim the request — the winner writes a ``sending`` row per channel in ``slot_sends`` and
renders the messages, all committed before any provider is called.
"""

import logging
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from app.campaigns.models import Campaign
from app.campaigns.rendering import TemplateProblem, message_context, render_message
from app.extensions import db
from app.lifecycle import explain, policy
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.lifecycle.results import record_send_result
from app.lifecycle.states import CANCELLED, EXPIRED, QUEUED, SCHEDULED, SENDABLE, add_event, transition
from app.optouts.models import opted_out_channels
from app.providers import OutgoingMessage, ProviderError, get_provider
from app.settings import current_settings
from app.settings.quiet_hours import quiet_hours_window

log = logging.getLogger("app.lifecycle")


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
    shop = current_settings()
    context = message_context(req, shop_name=shop.name, base_url=shop.public_base_url, slot=slot,
                              max_reminders=campaign.max_reminders if campaign.reminder_enabled else 0,
                              logo_url=shop.logo_url(), brand_color=shop.brand_color)
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
        template = campaign.template_for(channel, kind, slot)
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
                sender=shop.sender if channel == "email" else None,
                reply_to=shop.reply_to if channel == "email" else None,
            ),
            provider_name,
        ))
    names = ", ".join(explain.channel_name(c, in_sentence=True) for c in channels)
    add_event(req.id, "queued", now, slot=slot, detail=f"{explain.message_name(slot)} by {names}")
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
    shop = current_settings()
    tz_name = shop.timezone
    tz = ZoneInfo(tz_name)
    windows = {}
    for channel in channels:
        try:
            windows[channel] = policy.SendWindow.parse(campaign.send_window(channel))
        except policy.WindowInvalid as exc:
            log.warning("campaign=%s has an unreadable %s send window, ignored: %s", campaign.id, channel, exc)
    # The shop's quiet hours (Settings) hold every channel of every campaign.
    try:
        shop_window = quiet_hours_window(shop.quiet_hours)
    except policy.WindowInvalid:
        shop_window = None
    restricting = [w for w in (*windows.values(), shop_window) if w is not None]
    opening = policy.defer_to_windows(now, restricting, tz)
    if opening is None:  # windows that never overlap: the shop's quiet hours first, else the first
        opening = policy.defer_to_window(now, shop_window or restricting[0], tz)
    if opening == now:
        return False
    closed = [f"{explain.channel_name(ch, in_sentence=True)} quiet hours {w.quiet_hours()}"
              for ch, w in windows.items() if w is not None and not policy.in_window(now, w, tz)]
    if shop_window is not None and not policy.in_window(now, shop_window, tz):
        closed.append(f"the shop's quiet hours {shop_window.quiet_hours()}")
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
