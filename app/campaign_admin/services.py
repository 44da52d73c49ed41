"""Campaign settings and status changes. Flushes, never commits."""

import json
import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from flask import current_app
from sqlalchemy import select, update

from app.campaigns.models import (
    ACTIVE,
    ARCHIVED,
    CAMPAIGN_STATUSES,
    CHANNELS,
    MAX_REMINDERS,
    STATUS_CHANGES,
    TRIGGERS,
    Campaign,
    MessageTemplate,
    new_revision,
)
from app.extensions import db
from app.lifecycle import policy
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import cancel_request
from app.lifecycle.states import CANCELLABLE, CLICKED, SCHEDULED, SENDABLE, SENT

MAX_ORDER_TOTAL = Decimal(10) ** 10

log = logging.getLogger("app.campaigns")

DEFAULTS = {
    "trigger": "delivered",
    "delay_days": 3,
    "channel": "email",
    "reminder_enabled": True,
    "reminder_delay_days": 4,
    "max_reminders": 2,
    "expire_after_days": 30,
    "status": ACTIVE,
    # Shop time; texts at night annoy customers and break carrier rules in many places.
    "email_send_window": None,
    "sms_send_window": "09:00-20:00",
}
EDITABLE = set(DEFAULTS) | {
    "name",
    "include_products",
    "exclude_products",
    "exclude_tags",
    "min_order_total",
    "auto_approve_min_rating",
    "email_initial_template_id",
    "email_reminder_template_id",
    "sms_initial_template_id",
    "sms_reminder_template_id",
    # {"email": {"2": template id}, "sms": {…}} (or its JSON): another template for one reminder.
    "reminder_template_ids",
    # The customer's page (app/public): its heading, questions, consent and thank-you texts.
    "prompt_heading",
    "prompt_questions",
    "consent_text",
    "thank_you_text",
}
REMINDER_TEMPLATES = "reminder_template_ids"
PAGE_TEXTS = {"prompt_heading": 200, "consent_text": 1000, "thank_you_text": 2000}
MAX_QUESTIONS, MAX_QUESTION = 3, 200


class CampaignInvalid(ValueError):
    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def validate(values):
    """Check a full set of campaign settings; raises CampaignInvalid naming the field."""
    name = (values.get("name") or "").strip()
    if not name or len(name) > 120:
        raise CampaignInvalid("name is required (at most 120 characters)", "name")
    values["name"] = name
    for field, allowed in (("trigger", TRIGGERS), ("channel", CHANNELS), ("status", CAMPAIGN_STATUSES)):
        if values.get(field) not in allowed:
            raise CampaignInvalid(f"{field} must be one of {', '.join(allowed)}", field)
    for field, low, high in (
        ("delay_days", 0, 365),
        ("expire_after_days", 1, 365),
        ("max_reminders", 0, 10),
        ("reminder_delay_days", 0, 365),
    ):
        value = values.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CampaignInvalid(f"{field} must be a whole number from {low} to {high}", field)
    if values["reminder_enabled"] and values["reminder_delay_days"] < 1:
        raise CampaignInvalid("reminder delay must be at least 1 day when reminders are on", "reminder_delay_days")
    total = values.get("min_order_total")
    if total not in (None, ""):
        try:
            total = Decimal(str(total))
        except InvalidOperation:
            raise CampaignInvalid("minimum order total must be a number such as 25.00", "min_order_total") from None
        if not total.is_finite() or total < 0:
            raise CampaignInvalid("minimum order total must not be negative", "min_order_total")
        if total >= MAX_ORDER_TOTAL:  # the column is NUMERIC(12, 2): PostgreSQL refuses more
            raise CampaignInvalid("minimum order total must be below 10,000,000,000", "min_order_total")
        values["min_order_total"] = total
    else:
        values["min_order_total"] = None
    for field in ("include_products", "exclude_products", "exclude_tags"):
        cleaned = [str(v).strip() for v in values.get(field) or [] if str(v).strip()]
        values[field] = cleaned
    _validate_send_windows(values)
    rating = values.get("auto_approve_min_rating")
    if rating in (None, "", 0):
        values["auto_approve_min_rating"] = None
    elif isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise CampaignInvalid(
            "auto-approve rating must be a whole number from 1 to 5 (or empty: none)", "auto_approve_min_rating"
        )
    _validate_page_texts(values)
    for channel in ("email", "sms"):
        for kind in ("initial", "reminder"):
            field = f"{channel}_{kind}_template_id"
            template_id = values.get(field)
            if template_id is None:
                continue
            template = db.session.get(MessageTemplate, template_id)
            if template is None or template.channel != channel:
                raise CampaignInvalid(f"{field}: no {channel} template with id {template_id}", field)
    _validate_reminder_templates(values)
    return values


def _validate_reminder_templates(values):
    """The per-reminder templates: each an existing template of its channel, for a reminder
    number from 1 to the campaign's maximum (a choice past it could never be sent, so it is
    dropped). Stored as JSON, None when every reminder uses the campaign's reminder template."""
    chosen = values.get("reminder_template_ids")
    if isinstance(chosen, str):
        try:
            chosen = json.loads(chosen or "{}")
        except ValueError:
            raise CampaignInvalid(
                'reminder templates must be JSON such as {"sms": {"2": 7}}', REMINDER_TEMPLATES
            ) from None
    chosen = chosen or {}
    if not isinstance(chosen, dict) or not all(isinstance(n, dict) for n in chosen.values()):
        raise CampaignInvalid('reminder templates must look like {"sms": {"2": 7}}', REMINDER_TEMPLATES)
    kept = {}
    for channel, numbers in chosen.items():
        if channel not in ("email", "sms"):
            raise CampaignInvalid(
                f"reminder templates: {channel!r} is not a channel (email or sms)", REMINDER_TEMPLATES
            )
        for number, template_id in numbers.items():
            number = str(number)
            field = f"{channel}_reminder_{number}_template_id"
            if not number.isdigit() or not 1 <= int(number) <= MAX_REMINDERS:
                raise CampaignInvalid(
                    f"reminder templates: {number!r} is not a reminder number from 1 to {MAX_REMINDERS}",
                    REMINDER_TEMPLATES,
                )
            if template_id in (None, ""):
                continue
            template = None
            if isinstance(template_id, int) and not isinstance(template_id, bool) and 0 < template_id < 2**63:
                template = db.session.get(MessageTemplate, template_id)
            if template is None or template.channel != channel:
                raise CampaignInvalid(
                    f"{channel} reminder {number}: no {channel} template with id {template_id}", field
                )
            if int(number) <= values["max_reminders"]:
                kept.setdefault(channel, {})[str(int(number))] = template_id
    values["reminder_template_ids"] = json.dumps(kept, sort_keys=True) if kept else None


def _validate_page_texts(values):
    """The customer page's texts: trimmed, empty means the default wording, bounded."""
    for field, limit in PAGE_TEXTS.items():
        text = str(values.get(field) or "").strip()
        if len(text) > limit:
            raise CampaignInvalid(f"{field.replace('_', ' ')} must be at most {limit} characters", field)
        if "\x00" in text:
            raise CampaignInvalid(f"{field.replace('_', ' ')} contains a NUL character", field)
        values[field] = text or None
    questions = [str(q).strip() for q in values.get("prompt_questions") or [] if str(q).strip()]
    if len(questions) > MAX_QUESTIONS:
        raise CampaignInvalid(f"at most {MAX_QUESTIONS} questions", "prompt_questions")
    for question in questions:
        if len(question) > MAX_QUESTION or "\x00" in question:
            raise CampaignInvalid(f"each question must be at most {MAX_QUESTION} characters", "prompt_questions")
    values["prompt_questions"] = questions


def _validate_send_windows(values):
    """Normalise "9:00-20:00" to "09:00-20:00" and "any" to None; a "both" campaign sends
    its two channels together, so their windows must share some time of day."""
    windows = {}
    for channel in ("email", "sms"):
        field = f"{channel}_send_window"
        try:
            windows[channel] = policy.SendWindow.parse(values.get(field))
        except policy.WindowInvalid as exc:
            raise CampaignInvalid(f"{channel} send window: {exc}", field) from None
        values[field] = windows[channel].text() if windows[channel] else None
    if values.get("channel") == "both" and not policy.windows_overlap(windows["email"], windows["sms"]):
        raise CampaignInvalid(
            f"the email window {windows['email']} and the SMS window {windows['sms']} never overlap; a campaign "
            "on both channels sends them together, so give them some common time",
            "sms_send_window",
        )


def default_template_ids():
    ids = {}
    for template in db.session.scalars(select(MessageTemplate).where(MessageTemplate.is_default)):
        ids.setdefault(f"{template.channel}_{template.kind}_template_id", template.id)
    return ids


def create_campaign(now, **values):
    unknown = set(values) - EDITABLE
    if unknown:
        raise CampaignInvalid(f"unknown setting {sorted(unknown)[0]}", sorted(unknown)[0])
    merged = {**DEFAULTS, **default_template_ids(), **{k: v for k, v in values.items() if v is not None}}
    merged = validate(merged)
    campaign = Campaign(**merged, created_at=now, updated_at=now)
    db.session.add(campaign)
    db.session.flush()
    log.info("campaign=%s created (%s)", campaign.id, campaign.name)
    return campaign


def update_campaign(campaign, now, **changes):
    """Apply changed settings; they take effect on slots not yet sent. Returns the
    Replanned count of requests whose timing followed.

    The status is not one of the settings written back here: a status given (the CLI's
    ``--status``) is changed by one conditional UPDATE from the status read, as
    ``set_status`` does, so an edit never writes over a status someone changed meanwhile."""
    unknown = set(changes) - EDITABLE - {"status"}
    if unknown:
        raise CampaignInvalid(f"unknown setting {sorted(unknown)[0]}", sorted(unknown)[0])
    current = {field: getattr(campaign, field) for field in EDITABLE}
    merged = validate({**current, **{k: v for k, v in changes.items() if v is not None}})
    status = merged.pop("status")
    if status != current["status"]:
        _change_status(campaign, (current["status"],), status, now, f"make it {status}")
    for field, value in merged.items():
        setattr(campaign, field, value)
    campaign.updated_at = now
    db.session.flush()
    replanned = reschedule_pending(campaign, now)
    log.info("campaign=%s updated; %s pending sends or open links replanned", campaign.id, replanned.requests)
    return replanned


class Replanned(NamedTuple):
    requests: int  # pending sends or open links given the campaign's new timing
    left: int  # changed by the dispatcher (or the customer) meanwhile: left as they were


def postponed_by():
    """How far a customer's "not arrived yet?" moved their request (app.public.services)."""
    return timedelta(days=current_app.config["POSTPONE_DAYS"])


def reschedule_pending(campaign, now):
    """Recompute due times of slots not yet sent, and the expiry of links still open, from
    the campaign's current settings (returns Replanned).

    Each request is written by a conditional UPDATE that repeats what was read (its status,
    unclaimed, no attempt yet, the slot, due time, expiry and postponement it had), like a
    request transition: one the dispatcher claimed, sent or expired (or the customer
    postponed) in the meantime is left as that change left it, not overwritten with a plan
    made from its old state; ``Replanned.left`` counts them."""
    settings = policy.ReminderSettings.of(campaign)
    R = TestimonialRequest
    count = left = 0
    pending = db.session.execute(
        select(R.id, R.status, R.trigger_at, R.sent_at, R.last_sent_at, R.next_slot, R.next_send_at, R.postponed_at)
        .where(
            R.campaign_id == campaign.id,
            R.status.in_(SENDABLE),
            R.claimed_at.is_(None),
            R.attempts == 0,  # a slot waiting on a retry keeps its backoff
        )
        .order_by(R.id)
    ).all()
    for req in pending:
        if req.status == SCHEDULED:
            due = max(policy.initial_due_at(req.trigger_at, campaign.delay_days), now)
        elif req.sent_at is not None:
            following = policy.next_slot_after(req.next_slot - 1, req.sent_at, settings, last_sent_at=req.last_sent_at)
            due = following[1] if following else None
        else:
            due = None
        if due is not None and req.postponed_at is not None:
            due += postponed_by()  # the customer's "not arrived yet" still holds
        if due == req.next_send_at:
            continue
        won = _update_if_unchanged(
            req.id,
            R.status == req.status,
            R.claimed_at.is_(None),
            R.attempts == 0,
            R.next_slot == req.next_slot,
            _same(R.next_send_at, req.next_send_at),
            _same(R.postponed_at, req.postponed_at),
            next_send_at=due,
        )
        count, left = count + won, left + (not won)
    # The link's expiry follows the campaign too: counted from each request's first send,
    # so a longer expiry keeps waiting links open, and a shorter one closes at the next tick
    # those already past it (a request already expired stays expired).
    running = db.session.execute(
        select(R.id, R.sent_at, R.expires_at, R.postponed_at)
        .where(R.campaign_id == campaign.id, R.status.in_((SENT, CLICKED)), R.sent_at.is_not(None))
        .order_by(R.id)
    ).all()
    for req in running:
        expires = policy.expires_at(req.sent_at, campaign.expire_after_days)
        if req.postponed_at is not None:
            expires += postponed_by()
        if req.expires_at == expires:
            continue
        won = _update_if_unchanged(
            req.id,
            R.status.in_((SENT, CLICKED)),
            _same(R.sent_at, req.sent_at),
            _same(R.expires_at, req.expires_at),
            _same(R.postponed_at, req.postponed_at),
            expires_at=expires,
        )
        count, left = count + won, left + (not won)
    if left:
        log.info("campaign=%s: %s requests changed while being replanned; they keep their plan", campaign.id, left)
    return Replanned(count, left)


def _same(column, value):
    return column.is_(None) if value is None else column == value


def _update_if_unchanged(request_id, *unchanged, **values):
    """One request's UPDATE, only while it still is as read; True when it was written."""
    result = db.session.execute(
        update(TestimonialRequest)
        .where(TestimonialRequest.id == request_id, *unchanged)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def set_status(campaign, change, now):
    """Pause holds pending sends; resume (or activate a draft) releases them; archive
    stops them for good and cancels the campaign's pending requests. Returns how many
    requests were cancelled."""
    expected, target = STATUS_CHANGES[change]
    if campaign.status not in expected:
        raise CampaignInvalid(f"campaign {campaign.id} is {campaign.status}; cannot {change} it", "status")
    _change_status(campaign, expected, target, now, f"{change} it")
    cancelled = 0
    if target == ARCHIVED:
        for req in db.session.scalars(
            select(TestimonialRequest).where(
                TestimonialRequest.campaign_id == campaign.id, TestimonialRequest.status.in_(CANCELLABLE)
            )
        ):
            cancelled += cancel_request(req, now, f"campaign {campaign.id} archived")
    db.session.flush()
    log.info("campaign=%s %s (%s pending requests cancelled)", campaign.id, target, cancelled)
    return cancelled


def _change_status(campaign, expected, target, now, what):
    """``UPDATE campaigns SET status = :target WHERE id = :id AND status IN :expected``: the
    row count says whether this call made the change, so two people (or a person and the
    CLI) pausing and archiving at once cannot both win. Raises CampaignInvalid when the
    campaign had already left ``expected``; the instance then shows its status as stored."""
    db.session.flush()  # the instance's own pending changes first, so the refresh loses none
    result = db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_(expected))
        # A Core UPDATE runs no before_update event: the new revision is set here.
        .values(status=target, updated_at=now, revision=new_revision())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(campaign)
    if result.rowcount != 1:
        raise CampaignInvalid(
            f"campaign {campaign.id} was changed at the same time and is now {campaign.status}; cannot {what}",
            "status",
        )
