"""Step 5, first half: claim a batch of due slots and prepare their messages.

One statement claims up to ``size`` due slots, oldest first: an ``UPDATE … RETURNING``
that sets the claim on rows still unclaimed (SQLite serialises writers; PostgreSQL's
``FOR UPDATE SKIP LOCKED`` lets several processes claim side by side, each skipping the
rows another is claiming). In the same short transaction each claimed slot gets its pure
decision (``policy.decide_slot`` then ``policy.plan_due_slot``: send, hold, expire, stop,
cancel for an opted-out customer, or defer to the send window); the slots to send get a
``sending`` row per channel in ``slot_sends`` and their ``queued`` event, and the others
are released with what the decision said. All of it is committed before any provider is
called; the messages are rendered after the commit, from the rows the claim returned.
"""

import logging
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from app.bulk import insert_rows
from app.campaigns.models import ACTIVE, Campaign, channel_name
from app.campaigns.rendering import TemplateProblem, message_context, render_message
from app.extensions import db
from app.lifecycle import policy
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.lifecycle.names import message_name
from app.lifecycle.results import add_failed_event, committed
from app.lifecycle.states import (
    CANCELLED,
    EXPIRED,
    FAILED,
    QUEUED,
    SCHEDULED,
    SENDABLE,
    add_event,
    add_events,
    transition,
)
from app.optouts.models import OptOut, normalise_contact
from app.providers import OutgoingMessage, ProviderError, get_provider
from app.providers.base import TEMPLATE
from app.settings import current_settings

log = logging.getLogger("app.lifecycle")
R = TestimonialRequest

# What the claim returns of each row: everything the decision and the message need.
CLAIMED_COLUMNS = (
    R.id,
    R.campaign_id,
    R.status,
    R.next_slot,
    R.next_send_at,
    R.reminder_count,
    R.resend_count,
    R.attempts,
    R.expires_at,
    R.sent_at,
    R.clicked_at,
    R.channel,
    R.customer_email,
    R.customer_phone,
    R.customer_first_name,
    R.customer_last_name,
    R.product_title,
    R.product_image_url,
    R.order_id,
    R.token,
)


@dataclass(frozen=True)
class Claim:
    request_id: int
    campaign_id: int
    claim_id: str
    slot: int
    resend: int
    due_at: object
    messages: tuple  # (OutgoingMessage, provider name) pairs
    render_failures: tuple  # (channel, ProviderError)
    row: object = None  # the request's row as the claim returned it
    status: str | None = None  # its status once claimed (an initial slot is queued)
    campaign: object = None  # CampaignFacts


@dataclass
class ClaimBatch:
    claims: list  # the Claims to send
    rows: int = 0  # due slots the statement claimed (sent or not)
    held: tuple = ()  # request ids left due (campaign paused meanwhile): not claimed again this tick


@dataclass(frozen=True)
class CampaignFacts:
    """What the dispatcher needs of a campaign, read once per claim (plain values, so
    nothing touches the ORM after the commit)."""

    id: int
    status: str
    settings: policy.ReminderSettings
    expire_after_days: int
    windows: dict  # {channel: stored window text}
    templates: dict  # {(channel, kind): TemplateText or None}
    reminder_templates: dict  # {(channel, reminder number): TemplateText}: another one for that reminder

    def template_for(self, channel, kind, slot):
        """As ``Campaign.template_for``: a reminder's own template when it has one."""
        if kind == "reminder" and (channel, slot) in self.reminder_templates:
            return self.reminder_templates[(channel, slot)]
        return self.templates[(channel, kind)]


@dataclass(frozen=True)
class TemplateText:
    """A template's fields, as ``render_message`` reads them."""

    channel: str
    subject: str | None
    html: str | None
    text: str
    mode: str = "html"
    heading: str | None = None
    body: str | None = None
    button_text: str | None = None


class Unprepared(Exception):
    """A slot that cannot be prepared at all (an unknown provider)."""


def claim_slot(request_id, now, report):
    """Claim one request's due slot (as ``claim_due`` does for a batch); a Claim or None."""
    claims = claim_due(now, 1, report, request_ids=(request_id,)).claims
    return claims[0] if claims else None


def claim_due(now, size, report, *, request_ids=None, skip=(), campaigns=None):
    """Claim up to ``size`` due slots, oldest first; a ClaimBatch of the Claims to send.

    ``campaigns``: a dict the tick keeps its campaigns' facts in between claims."""
    providers = _providers()
    claim_id = uuid.uuid4().hex
    cache = {} if campaigns is None else campaigns
    started, rows, held = committed(
        lambda: _claim_and_decide(now, size, claim_id, providers, report, request_ids, skip, cache), report
    )
    report.claimed += len(started)
    claims = [_prepare(row, campaign, claim_id, channels, providers) for row, campaign, channels in started]
    return ClaimBatch(claims, rows, held)


def _claim_and_decide(now, size, claim_id, providers, report, request_ids, skip, campaigns):
    """The claim's transaction: claim, decide each slot, queue the ones to send."""
    rows = sorted(_claim_rows(now, size, claim_id, request_ids, skip), key=lambda r: (r.next_send_at, r.id))
    if not rows:
        return [], 0, ()
    unread = {r.campaign_id for r in rows} - campaigns.keys()
    if unread:
        campaigns.update(campaign_facts(unread))
    blocked = opted_out(rows)
    shop = current_settings()
    tz, shop_window = ZoneInfo(shop.timezone), _shop_window(shop)
    to_send, held = [], []
    for row in rows:
        campaign = campaigns[row.campaign_id]
        plan = policy.plan_due_slot(
            _decision(row, campaign, now),
            channels_of(row),
            blocked.get(row.id, set()),
            _windows(campaign),
            now,
            tz,
            shop_window=shop_window,
        )
        missing = [providers[c] for c in plan.channels if isinstance(providers[c], Exception)]
        if plan.action == "send" and missing:
            fail_unprepared(row, claim_id, now, missing[0], report)
        elif plan.action == "send":
            to_send.append((row, plan.channels))
        else:
            if plan.action == "hold":
                held.append(row.id)
            _settle_unsent(row, campaign, claim_id, plan, now, report)
    started = _start_sends(to_send, claim_id, providers, now)
    return [(row, campaigns[row.campaign_id], channels) for row, channels in started], len(rows), tuple(held)


def _claim_rows(now, size, claim_id, request_ids, skip):
    due = (
        select(R.id)
        .join(Campaign, Campaign.id == R.campaign_id)
        .where(
            R.status.in_(SENDABLE),
            R.next_send_at <= now,
            R.claimed_at.is_(None),
            # Paused campaigns hold their slots until resumed; drafts never send.
            Campaign.status == ACTIVE,
        )
        .order_by(R.next_send_at, R.id)
        .limit(size)
    )
    if request_ids is not None:
        due = due.where(R.id.in_(request_ids))
    if skip:
        due = due.where(R.id.not_in(skip))
    claim = update(R).values(claimed_at=now, claim_id=claim_id).returning(*CLAIMED_COLUMNS)
    if db.engine.dialect.name == "postgresql":
        # Rows another process is claiming right now are skipped, not waited for. The
        # choice is a CTE, computed once: as an IN (subquery) the planner may run it again
        # per row, each run skipping other locked rows, and claim more than ``size``.
        due = due.with_for_update(of=R, skip_locked=True).cte("due")
        claim = claim.add_cte(due).where(R.id == due.c.id, R.claimed_at.is_(None))
    else:
        claim = claim.where(R.id.in_(due.scalar_subquery()), R.claimed_at.is_(None))
    return db.session.execute(claim.execution_options(synchronize_session=False)).all()


def channels_of(row):
    return ("email", "sms") if row.channel == "both" else (row.channel,)


def campaign_facts(campaign_ids):
    """The campaigns' facts with their templates, in two queries."""
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.id.in_(campaign_ids))
        .options(
            *(
                selectinload(getattr(Campaign, f"{ch}_{kind}_template"))
                for ch in ("email", "sms")
                for kind in ("initial", "reminder")
            )
        )
    ).all()
    return {
        c.id: CampaignFacts(
            id=c.id,
            status=c.status,
            settings=policy.ReminderSettings.of(c),
            expire_after_days=c.expire_after_days,
            windows={ch: c.send_window(ch) for ch in ("email", "sms")},
            templates={
                (ch, kind): _text(getattr(c, f"{ch}_{kind}_template"))
                for ch in ("email", "sms")
                for kind in ("initial", "reminder")
            },
            reminder_templates=_reminder_templates(c),
        )
        for c in campaigns
    }


def _reminder_templates(campaign):
    chosen = {}
    for channel, numbers in campaign.reminder_template_choices().items():
        for number in numbers if isinstance(numbers, dict) else {}:
            if not str(number).isdigit():
                continue
            template = campaign.template_for(channel, "reminder", int(number))
            if template is not None:
                chosen[(channel, int(number))] = _text(template)
    return chosen


def _text(template):
    if template is None:
        return None
    return TemplateText(
        template.channel,
        template.subject,
        template.html,
        template.text,
        template.mode or "html",
        template.heading,
        template.body,
        template.button_text,
    )


def _shop_window(shop):
    """The shop's quiet hours (Settings) hold every channel of every campaign."""
    try:
        return policy.quiet_hours_window(shop.quiet_hours)
    except policy.WindowInvalid:
        return None


def opted_out(rows):
    """``{request id: channels the customer opted out of}``, in one query."""
    wanted = {}
    for row in rows:
        if row.customer_email:
            wanted.setdefault(("email", normalise_contact("email", row.customer_email)), []).append(row.id)
        if row.customer_phone:
            wanted.setdefault(("sms", normalise_contact("sms", row.customer_phone)), []).append(row.id)
    if not wanted:
        return {}
    found = db.session.execute(
        select(OptOut.channel, OptOut.contact).where(OptOut.contact.in_({contact for _, contact in wanted}))
    ).all()
    blocked = {}
    for channel, contact in found:
        for request_id in wanted.get((channel, contact), ()):
            blocked.setdefault(request_id, set()).add(channel)
    return blocked


def _providers():
    """Each channel's provider, or the exception that says why there is none."""
    found = {}
    for channel in ("email", "sms"):
        try:
            found[channel] = get_provider(channel)
        except Exception as exc:  # an unknown provider fails the slots that need it, visibly
            found[channel] = Unprepared(exc)
    return found


def _decision(row, campaign, now):
    return policy.decide_slot(
        slot=row.next_slot,
        status=row.status,
        campaign_status=campaign.status,
        settings=campaign.settings,
        reminder_count=row.reminder_count,
        request_expires_at=row.expires_at,
        now=now,
    )


def _windows(campaign):
    windows = {}
    for channel, text in campaign.windows.items():
        try:
            windows[channel] = policy.SendWindow.parse(text)
        except policy.WindowInvalid as exc:
            log.warning("campaign=%s has an unreadable %s send window, ignored: %s", campaign.id, channel, exc)
            windows[channel] = None
    return windows


# -- the slots that are not sent --------------------------------------------------------


def _settle_unsent(row, campaign, claim_id, plan, now, report):
    """Apply a hold / expire / stop / cancel / defer decision and release the claim."""
    mine = (R.claim_id == claim_id,)
    release = {"claimed_at": None, "claim_id": None}
    if plan.action == "hold":  # paused since the claim read it: left as it is, due after a resume
        _release(row.id, claim_id)
        log.info("step=5 held request=%s campaign=%s: %s", row.id, campaign.id, plan.reason)
    elif plan.action == "expire":
        if transition(row.id, row.status, EXPIRED, where=mine, next_send_at=None, **release):
            add_event(row.id, "expired", now, slot=row.next_slot, detail=plan.reason)
            report.expired += 1
            log.info("step=8 expired request=%s campaign=%s: %s", row.id, campaign.id, plan.reason)
    elif plan.action == "stop":
        _release(row.id, claim_id, next_send_at=None)
        report.stopped += 1
        log.info("step=8 no further sends request=%s campaign=%s: %s", row.id, campaign.id, plan.reason)
    elif plan.action == "cancel":
        if transition(row.id, row.status, CANCELLED, where=mine, next_send_at=None, cancelled_at=now, **release):
            add_event(row.id, "cancelled", now, slot=row.next_slot, detail="customer opted out")
            report.cancelled += 1
            log.info("step=5 cancelled request=%s campaign=%s: opted out", row.id, campaign.id)
    else:
        _defer(row, campaign, claim_id, plan, now, report)


def _defer(row, campaign, claim_id, plan, now, report):
    """Quiet hours: the slot moves to the moment all its channels may send, with a
    ``deferred`` event saying why."""
    tz_name = current_settings().timezone
    closed = [
        f"the shop's quiet hours {w.quiet_hours()}"
        if ch is None
        else f"{channel_name(ch, in_sentence=True)} quiet hours {w.quiet_hours()}"
        for ch, w in plan.closed
    ]
    local = plan.opening.astimezone(ZoneInfo(tz_name))
    detail = (
        f"{', '.join(closed)} {tz_name}; deferred to {local:%Y-%m-%d %H:%M} {local.tzname()} "
        f"({plan.opening:%Y-%m-%d %H:%M} UTC)"
    )
    if _release(row.id, claim_id, next_send_at=plan.opening):
        add_event(row.id, "deferred", now, slot=row.next_slot, detail=detail)
        report.deferred += 1
        log.info("step=5 deferred request=%s campaign=%s slot=%s: %s", row.id, campaign.id, row.next_slot, detail)


def _release(request_id, claim_id, **values):
    return (
        db.session.execute(
            update(R)
            .where(R.id == request_id, R.claim_id == claim_id)
            .values(claimed_at=None, claim_id=None, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def fail_unprepared(row, claim_id, now, exc, report):
    """A slot that cannot even be prepared (an unknown provider) fails with the reason on
    the request (spec §6), instead of staying due and failing silently at every tick.
    Nothing was handed to a provider."""
    cause = exc.args[0] if isinstance(exc, Unprepared) else exc
    error = ProviderError(f"could not prepare the message: {cause!r}", retryable=False, code="internal")
    report.errors.append({"request_id": row.id, "error": repr(cause)})
    if transition(
        row.id,
        row.status,
        FAILED,
        where=(R.claim_id == claim_id,),
        attempts=row.attempts + 1,
        next_send_at=None,
        claimed_at=None,
        claim_id=None,
    ):
        for channel in channels_of(row):
            add_failed_event(row.id, row.next_slot, error.failure(channel, None), now)
        add_event(
            row.id,
            "failed",
            now,
            slot=row.next_slot,
            detail=f"request failed: {error.message}; use Retry to send again",
        )
        report.failed += 1
        log.warning(
            "step=5 request failed request=%s campaign=%s slot=%s: %s", row.id, row.campaign_id, row.next_slot, error
        )


# -- the slots that are sent --------------------------------------------------------------


def _start_sends(to_send, claim_id, providers, now):
    """Queue the slots: status, ``sending`` rows and ``queued`` events, a few statements
    for the whole batch. Returns [(row, channels to hand over)]."""
    if not to_send:
        return []
    ids = [row.id for row, _ in to_send]
    db.session.execute(
        update(R)
        .where(R.id.in_(ids), R.status == SCHEDULED, R.claim_id == claim_id)
        .values(status=QUEUED)
        .execution_options(synchronize_session=False)
    )
    existing = {
        (s.request_id, s.slot, s.channel, s.resend): s
        for s in db.session.scalars(select(SlotSend).where(SlotSend.request_id.in_(ids)))
    }
    started, new_rows, events = [], [], []
    for row, channels in to_send:
        going = []
        for channel in channels:
            earlier = existing.get((row.id, row.next_slot, channel, row.resend_count))
            # A channel already accepted for this slot, or refused for good, is not sent again.
            if earlier is not None and (earlier.status == SlotSend.SENT or not earlier.retryable):
                continue
            going.append(channel)
            if earlier is None:
                new_rows.append(
                    dict(
                        request_id=row.id,
                        slot=row.next_slot,
                        channel=channel,
                        resend=row.resend_count,
                        status=SlotSend.SENDING,
                        provider=providers[channel].name,
                        attempts=1,
                        started_at=now,
                        due_at=row.next_send_at,
                        retryable=True,
                    )
                )
            else:
                earlier.status, earlier.provider, earlier.attempts = (
                    SlotSend.SENDING,
                    providers[channel].name,
                    earlier.attempts + 1,
                )
                earlier.started_at, earlier.error, earlier.finished_at = now, None, None
        names = ", ".join(channel_name(c, in_sentence=True) for c in channels)
        events.append(
            dict(
                request_id=row.id,
                type="queued",
                slot=row.next_slot,
                occurred_at=now,
                detail=f"{message_name(row.next_slot)} by {names}",
            )
        )
        started.append((row, tuple(going)))
        log.info(
            "step=5 queued request=%s campaign=%s slot=%s channels=%s",
            row.id,
            row.campaign_id,
            row.next_slot,
            list(channels),
        )
    if new_rows:
        insert_rows(db.session.connection(), SlotSend.__table__, new_rows)
    add_events(events)
    return started


def _prepare(row, campaign, claim_id, channels, providers):
    """Render the claimed slot's messages (after the commit: no transaction is open)."""
    shop, slot = current_settings(), row.next_slot
    context = message_context(
        row,
        shop_name=shop.name,
        base_url=shop.public_base_url,
        slot=slot,
        max_reminders=campaign.settings.max_reminders if campaign.settings.reminder_enabled else 0,
        logo_url=shop.logo_url(),
        brand_color=shop.brand_color,
    )
    kind = "initial" if slot == 0 else "reminder"
    messages, failures = [], []
    for channel in channels:
        template = campaign.template_for(channel, kind, slot)
        try:
            if template is None:
                raise TemplateProblem(f"the campaign has no {channel} {kind} template")
            subject, html, text = render_message(template, context)
        except TemplateProblem as exc:
            failures.append((channel, ProviderError(str(exc), retryable=False, code="template", kind=TEMPLATE)))
            continue
        except Exception as exc:  # a bug in rendering: nothing was handed over
            log.exception("step=5 could not render request=%s channel=%s", row.id, channel)
            failures.append(
                (channel, ProviderError(f"could not prepare the message: {exc!r}", retryable=False, code="internal"))
            )
            continue
        to = row.customer_email if channel == "email" else row.customer_phone
        message = OutgoingMessage(
            channel=channel,
            to=to,
            subject=subject,
            html=html,
            text=text,
            request_id=row.id,
            campaign_id=row.campaign_id,
            slot=slot,
            unsubscribe_url=context["unsubscribe_link"],
            sender=shop.sender if channel == "email" else None,
            reply_to=shop.reply_to if channel == "email" else None,
        )
        messages.append((message, providers[channel].name))
    return Claim(
        row.id,
        row.campaign_id,
        claim_id,
        row.next_slot,
        row.resend_count,
        row.next_send_at,
        tuple(messages),
        tuple(failures),
        row=row,
        campaign=campaign,
        status=QUEUED if row.status == SCHEDULED else row.status,
    )
