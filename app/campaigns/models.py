"""Campaigns (who is asked, when, how often) and the message templates they use."""

import json
import secrets
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.dbtypes import JSONList, UTCDateTime
from app.extensions import db

# A campaign's statuses. Every other module names them through these (a test greps app/
# for the bare words); a status change is one conditional UPDATE
# (app.campaign_admin.services.set_status), as a request's transition is.
DRAFT, ACTIVE, PAUSED, ARCHIVED = "draft", "active", "paused", "archived"
CAMPAIGN_STATUSES = (DRAFT, ACTIVE, PAUSED, ARCHIVED)
STARTING = (ACTIVE, DRAFT)  # what a new campaign may start as
LIVE = (DRAFT, ACTIVE, PAUSED)  # not archived: may still send, once active
# The merchant's status changes: the statuses each may start from, and where it leads.
STATUS_CHANGES = {
    "pause": ((ACTIVE,), PAUSED),
    "resume": ((PAUSED, DRAFT), ACTIVE),  # "Activate" on a draft
    "archive": (LIVE, ARCHIVED),
}
# The dashboard's badge colour for each status (Bootstrap's text-bg-*).
STATUS_BADGES = {ACTIVE: "success", PAUSED: "warning", DRAFT: "secondary", ARCHIVED: "dark"}
TRIGGERS = ("delivered", "fulfilled")
CHANNELS = ("email", "sms", "both")
TEMPLATE_KINDS = ("initial", "reminder")
MAX_REMINDERS = 10  # as ck_campaign_max_reminders says

# How every screen names a channel (labels; ``channel_name`` for the other forms).
CHANNEL_NAMES = {"email": "Email", "sms": "SMS", "both": "Email and SMS"}


def channel_name(channel, *, in_sentence=False, short=False):
    """ "Email", "SMS", "Email and SMS"; ``in_sentence``: "email", "SMS", "email and SMS";
    ``short`` (a narrow column): "Email + SMS"."""
    name = CHANNEL_NAMES.get(channel, channel or "")
    if short:
        name = name.replace(" and ", " + ")
    return name.replace("Email", "email") if in_sentence else name


class MessageTemplate(db.Model):
    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(10))  # email | sms
    kind: Mapped[str] = mapped_column(String(10))  # initial | reminder
    subject: Mapped[str | None] = mapped_column(String(255))
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # Email only: "simple" = subject, heading, body paragraphs and button text in the shop's
    # email layout (app/campaigns/email_layout.py); "html" = the merchant's own HTML.
    mode: Mapped[str] = mapped_column(String(6), default="html")
    heading: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    button_text: Mapped[str | None] = mapped_column(String(80))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms')", name="ck_template_channel"),
        CheckConstraint("kind IN ('initial', 'reminder')", name="ck_template_kind"),
    )

    def to_dict(self):
        return {
            "id": self.id,
            "name": self.name,
            "channel": self.channel,
            "kind": self.kind,
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "mode": self.mode,
            "heading": self.heading,
            "body": self.body,
            "button_text": self.button_text,
            "is_default": self.is_default,
        }


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE, index=True)
    trigger: Mapped[str] = mapped_column(String(10), default="delivered")
    delay_days: Mapped[int] = mapped_column(default=3)
    channel: Mapped[str] = mapped_column(String(5), default="email")
    reminder_enabled: Mapped[bool] = mapped_column(default=True)
    reminder_delay_days: Mapped[int] = mapped_column(default=4)
    max_reminders: Mapped[int] = mapped_column(default=2)
    expire_after_days: Mapped[int] = mapped_column(default=30)
    # Eligibility rules: product ids or SKUs; customer tags.
    include_products = mapped_column(JSONList, default=list, nullable=False)
    exclude_products = mapped_column(JSONList, default=list, nullable=False)
    exclude_tags = mapped_column(JSONList, default=list, nullable=False)
    min_order_total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # Send windows in shop time (SHOP_TIMEZONE), "HH:MM-HH:MM"; None = any time.
    email_send_window: Mapped[str | None] = mapped_column(String(11))
    sms_send_window: Mapped[str | None] = mapped_column(String(11), default="09:00-20:00")
    # New testimonials rated at least this (1–5) are approved on arrival; None: all wait.
    auto_approve_min_rating: Mapped[int | None] = mapped_column()
    # JSON {"email": {"2": template id}, "sms": {…}}: another template for one reminder number.
    reminder_template_ids: Mapped[str | None] = mapped_column(Text)

    # The customer's page: a heading, up to three guiding questions, the consent sentence
    # the customer ticks (None: the default wording) and an optional thank-you text
    # (a discount code, say) shown after they submit.
    prompt_heading: Mapped[str | None] = mapped_column(String(200))
    prompt_questions = mapped_column(JSONList, default=list)
    consent_text: Mapped[str | None] = mapped_column(Text)
    thank_you_text: Mapped[str | None] = mapped_column(Text)

    email_initial_template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id"))
    email_reminder_template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id"))
    sms_initial_template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id"))
    sms_reminder_template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id"))

    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    # A new random number on every change (see new_revision): the intake's cached rules
    # (app.intake.active_campaigns) compare the table's fingerprint with the one they were read at.
    revision: Mapped[int] = mapped_column(default=lambda: new_revision(), nullable=False)

    email_initial_template = relationship(MessageTemplate, foreign_keys=[email_initial_template_id])
    email_reminder_template = relationship(MessageTemplate, foreign_keys=[email_reminder_template_id])
    sms_initial_template = relationship(MessageTemplate, foreign_keys=[sms_initial_template_id])
    sms_reminder_template = relationship(MessageTemplate, foreign_keys=[sms_reminder_template_id])

    __table_args__ = (
        CheckConstraint(f"status IN {CAMPAIGN_STATUSES}", name="ck_campaign_status"),
        CheckConstraint("trigger IN ('delivered', 'fulfilled')", name="ck_campaign_trigger"),
        CheckConstraint("channel IN ('email', 'sms', 'both')", name="ck_campaign_channel"),
        CheckConstraint("delay_days >= 0", name="ck_campaign_delay"),
        CheckConstraint("max_reminders >= 0 AND max_reminders <= 10", name="ck_campaign_max_reminders"),
        CheckConstraint("expire_after_days >= 1", name="ck_campaign_expiry"),
    )

    def template_for(self, channel, kind, reminder_number=None):
        """The template a message uses: for a reminder, the one chosen for that reminder
        number when there is one, else the campaign's reminder template."""
        if kind == "reminder" and reminder_number:
            chosen = self.reminder_template_choices().get(channel, {}).get(str(reminder_number))
            if chosen:
                template = db.session.get(MessageTemplate, chosen)
                if template is not None and template.channel == channel:
                    return template
        return getattr(self, f"{channel}_{kind}_template")

    def reminder_template_choices(self):
        """{"email": {"2": template id}, …} (empty when every reminder uses one template)."""
        try:
            value = json.loads(self.reminder_template_ids or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def reminder_template_map(self):
        """{(channel, reminder number): template id} of the well-formed choices."""
        chosen = {}
        for channel, numbers in self.reminder_template_choices().items():
            for number, template_id in (numbers if isinstance(numbers, dict) else {}).items():
                if str(number).isdigit() and isinstance(template_id, int) and not isinstance(template_id, bool):
                    chosen[(channel, int(number))] = template_id
        return chosen

    # What the screens ask of a status, so templates compare no status words themselves.
    @property
    def is_draft(self):
        return self.status == DRAFT

    @property
    def is_active(self):
        return self.status == ACTIVE

    @property
    def is_paused(self):
        return self.status == PAUSED

    @property
    def is_archived(self):
        return self.status == ARCHIVED

    def can(self, change):
        """Whether a status change ("pause", "resume", "archive") starts from this status."""
        return self.status in STATUS_CHANGES[change][0]

    @property
    def channels(self):
        return ("email", "sms") if self.channel == "both" else (self.channel,)

    def send_window(self, channel):
        """The channel's send window as stored ("09:00-20:00"), or None for any time."""
        return getattr(self, f"{channel}_send_window")

    def to_dict(self):
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "trigger": self.trigger,
            "delay_days": self.delay_days,
            "channel": self.channel,
            "reminder_enabled": self.reminder_enabled,
            "reminder_delay_days": self.reminder_delay_days,
            "max_reminders": self.max_reminders,
            "expire_after_days": self.expire_after_days,
            "include_products": self.include_products,
            "exclude_products": self.exclude_products,
            "exclude_tags": self.exclude_tags,
            "min_order_total": str(self.min_order_total) if self.min_order_total is not None else None,
            "email_send_window": self.email_send_window,
            "sms_send_window": self.sms_send_window,
            "prompt_heading": self.prompt_heading,
            "prompt_questions": self.prompt_questions or [],
            "consent_text": self.consent_text,
            "thank_you_text": self.thank_you_text,
            "auto_approve_min_rating": self.auto_approve_min_rating,
            "templates": {
                f"{ch}_{kind}": getattr(self, f"{ch}_{kind}_template_id")
                for ch in ("email", "sms")
                for kind in TEMPLATE_KINDS
            },
            # {"sms": {"2": template id}}: another template for that reminder number.
            "reminder_templates": self.reminder_template_choices(),
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.created_at else None,
        }


def new_revision():
    """Random, not a counter: a change that was rolled back and a later, different change
    must not leave the table with the fingerprint the rolled-back one had."""
    return secrets.randbits(31) + 1


@event.listens_for(Campaign, "before_update")
def _bump_revision(_mapper, _connection, campaign):
    # Every ORM change of a campaign (services, views, tests) goes through here; a Core
    # UPDATE (the status changes in app.campaign_admin.services) sets a new revision itself.
    campaign.revision = new_revision()
