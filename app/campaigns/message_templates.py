"""Message templates as the merchant edits them: check, save, preview, send a test.

Flushes, never commits. A template that does not render (syntax error, unknown variable)
is never saved: the dispatcher would otherwise fail every send that uses it.
"""

import logging
import re
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import or_, select, update

from app.campaigns.models import Campaign, MessageTemplate
from app.campaigns.rendering import SAMPLE, SAMPLE_TOKEN, TemplateProblem, check, reminder_variables, render_message
from app.campaigns.sms import sms_count
from app.extensions import db
from app.providers import OutgoingMessage, ProviderError, get_provider
from app.settings import current_settings

log = logging.getLogger("app.campaigns")

FIELDS = ("name", "channel", "kind", "mode", "subject", "heading", "body", "button_text", "html", "text", "is_default")
TEMPLATE_PARTS = (
    ("subject", False),
    ("heading", False),
    ("body", False),
    ("button_text", False),
    ("html", True),
    ("text", False),
)
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TemplateInvalid(ValueError):
    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def clean(values):
    """Normalise the edited values; SMS templates have neither subject nor HTML, simple
    emails keep their pieces and no HTML of their own."""
    values = {key: values.get(key) for key in FIELDS}
    for key in ("name", "subject", "heading", "button_text"):
        values[key] = (values[key] or "").strip() or None
    values["html"] = (values["html"] or "").strip() or None
    values["body"] = (values["body"] or "").strip() or None
    values["text"] = values["text"] or ""
    values["mode"] = "simple" if values["mode"] == "simple" and values["channel"] == "email" else "html"
    if values["channel"] == "sms":
        values["subject"] = values["html"] = values["heading"] = values["body"] = values["button_text"] = None
    elif values["mode"] == "simple":
        values["html"], values["text"] = None, ""
    else:
        values["heading"] = values["body"] = values["button_text"] = None
    values["is_default"] = bool(values["is_default"])
    return values


def problems(values, context=None):
    """{field: message} for every part that does not render with the sample data."""
    found = {}
    for field, html in TEMPLATE_PARTS:
        if values.get(field):
            try:
                check(values[field], html=html)
            except TemplateProblem as exc:
                found[field] = str(exc)
    if not found:
        try:
            render_message(SimpleNamespace(**values), context or sample_context(values.get("kind")))
        except TemplateProblem as exc:
            found["body" if values.get("mode") == "simple" else "text"] = str(exc)
    return found


def sample_context(kind="initial", reminder_number=None, max_reminders=2):
    """The sample data, with this shop's name, logo, colour and its real link length."""
    shop = current_settings()
    number = 0 if kind != "reminder" else min(max(int(reminder_number or 1), 1), max(max_reminders, 1))
    return {
        **SAMPLE,
        "shop_name": shop.name,
        "link": shop.link(f"/r/{SAMPLE_TOKEN}"),
        "unsubscribe_link": shop.link(f"/u/{SAMPLE_TOKEN}"),
        **reminder_variables(number, max_reminders),
        "logo_url": shop.logo_url(),
        "brand_color": shop.brand_color,
    }


def preview(values, reminder_number=None):
    """What a customer would receive with the sample data, or the problems that stop it."""
    values = clean(values)
    context = sample_context(values.get("kind"), reminder_number)
    found = problems(values, context)
    result = {
        "channel": values["channel"],
        "errors": found,
        "subject": None,
        "html": None,
        "text": None,
        "reminder_number": context["reminder_number"],
        "reminders_left": context["reminders_left"],
    }
    if not found:
        subject, html, text = render_message(SimpleNamespace(**values), context)
        result.update(subject=subject, html=html, text=text)
    if values["channel"] == "sms":
        result["sms"] = sms_count(result["text"] if result["text"] is not None else values["text"]).to_dict()
    return result


def sms_cost_warning(values):
    """The sentence that asks before saving an SMS that goes out as 2+ messages (None: fine).

    Counted on the sample rendered with the real link length, for the first message and,
    for reminders, for the first and the last reminder (their wording may differ)."""
    values = clean(values)
    if values["channel"] != "sms":
        return None
    numbers = (None,) if values["kind"] != "reminder" else (1, 2)
    worst = max((preview(values, n).get("sms") or {}).get("segments", 0) for n in numbers)
    if worst < 2:
        return None
    return (
        f"This text goes out as {worst} text messages with a sample name and product (longer names make "
        f"it longer still): each one costs {worst}× the price of a single SMS."
    )


def save_template(template, values, now):
    """Create (template=None) or update a template; raises TemplateInvalid naming the field."""
    values = clean(values)
    found = problems(values)
    if found:
        field, message = next(iter(found.items()))
        raise TemplateInvalid(message, field)
    if template is None:
        template = MessageTemplate(created_at=now)
        db.session.add(template)
    elif template.channel != values["channel"] and used_by(template):
        raise TemplateInvalid("campaigns use this template: it cannot change channel", "channel")
    for key, value in values.items():
        setattr(template, key, value)
    template.updated_at = now
    db.session.flush()
    if template.is_default:
        # One default per channel and kind: the one new campaigns start with.
        db.session.execute(
            update(MessageTemplate)
            .where(
                MessageTemplate.channel == template.channel,
                MessageTemplate.kind == template.kind,
                MessageTemplate.id != template.id,
            )
            .values(is_default=False)
        )
    log.info("template=%s saved (%s %s)", template.id, template.channel, template.kind)
    return template


def used_by(template):
    """The campaigns that send this template (for every reminder or for one of them)."""
    return db.session.scalars(
        select(Campaign)
        .where(
            or_(
                Campaign.email_initial_template_id == template.id,
                Campaign.email_reminder_template_id == template.id,
                Campaign.sms_initial_template_id == template.id,
                Campaign.sms_reminder_template_id == template.id,
                Campaign.id.in_(
                    [c.id for c in _with_reminder_templates() if template.id in c.reminder_template_map().values()]
                ),
            )
        )
        .order_by(Campaign.name)
    ).all()


def _with_reminder_templates():
    """The campaigns that chose another template for some reminder (few: read them whole)."""
    return db.session.scalars(select(Campaign).where(Campaign.reminder_template_ids.is_not(None))).all()


def usage_counts():
    """{template id: how many campaigns use it}, each campaign counted once per template."""
    users = {}
    for column in ("email_initial", "email_reminder", "sms_initial", "sms_reminder"):
        col = getattr(Campaign, f"{column}_template_id")
        for campaign_id, template_id in db.session.execute(select(Campaign.id, col).where(col.is_not(None))):
            users.setdefault(template_id, set()).add(campaign_id)
    for campaign in _with_reminder_templates():
        for template_id in campaign.reminder_template_map().values():
            users.setdefault(template_id, set()).add(campaign.id)
    return {template_id: len(ids) for template_id, ids in users.items()}


@dataclass(frozen=True)
class TestSendResult:
    __test__ = False
    ok: bool
    provider: str
    message: str  # the provider's message id, or its error


def test_message(template, to):
    """The saved template rendered with the sample data, addressed to ``to``.

    A test belongs to no request or campaign: the ids are None (the outbox stores them
    empty; SendGrid receives them as custom args, and events for them match no request).
    """
    to = (to or "").strip()
    if template.channel == "email":
        to = to.lower()
        if not EMAIL.match(to):
            raise TemplateInvalid("enter an email address such as you@example.com", "to")
    else:
        to = re.sub(r"[\s().-]", "", to)
        if not PHONE.match(to):
            raise TemplateInvalid("enter a phone number in international format, such as +15551234567", "to")
    context = sample_context(template.kind)
    subject, html, text = render_message(template, context)

    shop = current_settings()
    return OutgoingMessage(
        channel=template.channel,
        to=to,
        subject=subject and f"[Test] {subject}",
        html=html,
        text=text,
        request_id=None,
        campaign_id=None,
        slot=0,
        unsubscribe_url=context["unsubscribe_link"],
        sender=shop.sender if template.channel == "email" else None,
        reply_to=shop.reply_to if template.channel == "email" else None,
    )


def send_test(message):
    """Hand a test message to the channel's provider; call it outside any open transaction
    (a provider such as the outbox writes in its own)."""
    provider = get_provider(message.channel)
    try:
        message_id = provider.send(message)
    except ProviderError as exc:
        log.warning("test send to %s failed: %s", message.to, exc)
        return TestSendResult(False, provider.name, str(exc))
    log.info("test sent to %s (%s %s)", message.to, provider.name, message_id)
    return TestSendResult(True, provider.name, message_id or "accepted")
