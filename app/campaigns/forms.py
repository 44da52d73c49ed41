"""Dashboard forms for campaigns and message templates.

Field names match the settings ``app.campaign_admin.services`` takes, so a CampaignInvalid's
``field`` names the form field that shows the message.
"""

import re

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from app.campaigns.models import ACTIVE, CHANNEL_NAMES, DRAFT, MAX_REMINDERS, MessageTemplate, channel_name
from app.extensions import db

CHANNELS = {c: CHANNEL_NAMES[c] for c in ("email", "sms")}  # the label a field starts with
KINDS = {"initial": "first message", "reminder": "reminders"}
KIND_WORDS = {"initial": "first message", "reminder": "reminder"}  # one template's use, as Templates says it
# One template select per channel and kind: email_initial_template_id … sms_reminder_template_id.
TEMPLATE_FIELDS = {f"{channel}_{kind}_template_id": (channel, kind) for channel in CHANNELS for kind in KINDS}
# Another template for one reminder number: email_reminder_1_template_id … sms_reminder_10_template_id.
REMINDER_FIELDS = {
    f"{channel}_reminder_{number}_template_id": (channel, number)
    for channel in CHANNELS
    for number in range(1, MAX_REMINDERS + 1)
}
SAME_AS_REMINDERS = "Same as the other reminders"
LIST_FIELDS = ("include_products", "exclude_products", "exclude_tags")
PAGE_FIELDS = ("prompt_heading", "consent_text", "thank_you_text")  # the customer's page
SETTINGS = (
    "name",
    "trigger",
    "delay_days",
    "channel",
    "reminder_enabled",
    "reminder_delay_days",
    "max_reminders",
    "expire_after_days",
    *LIST_FIELDS,
    "min_order_total",
    "email_send_window",
    "sms_send_window",
    "auto_approve_min_rating",
    *TEMPLATE_FIELDS,
)


def whole_number(label, low, high):
    message = f"{label} must be a whole number from {low} to {high}."
    return [InputRequired(message=message), NumberRange(min=low, max=high, message=message)]


def optional_int(value):
    return int(value) if value not in (None, "", "None") else None


def split_list(text):
    """Comma- or newline-separated values, blanks dropped, order and case kept."""
    return [part.strip() for part in re.split(r"[,\n\r]+", text or "") if part.strip()]


class CampaignForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(message="Give the campaign a name."), Length(max=120)],
        description="For you only; customers never see it.",
    )
    status = SelectField(
        "Start as",
        choices={ACTIVE: "Active", DRAFT: "Draft"},
        # The explanation below the field: in the option text it was cut off at 1280 px.
        description="Active asks about new orders from now on; a draft is saved and sends nothing until you "
        "activate it.",
    )
    trigger = SelectField(
        "Start counting when the order is",
        choices={"delivered": "Delivered", "fulfilled": "Fulfilled (shipped)"},
        description="The order event the delay counts from.",
    )
    delay_days = IntegerField(
        "Days after that to ask",
        validators=whole_number("The delay", 0, 365),
        description="0: asked right after the order event, within a minute or so.",
    )
    channel = SelectField(
        "Channel",
        choices=CHANNEL_NAMES,
        description="A customer without an address or phone for a channel is asked on the other.",
    )
    reminder_enabled = BooleanField("Send reminders to customers who have not recorded yet")
    reminder_delay_days = IntegerField(
        "Days between reminders",
        validators=whole_number("The reminder delay", 0, 365),
        description="At least 1 day when reminders are on; counted from the previous send.",
    )
    max_reminders = IntegerField(
        "Maximum reminders",
        validators=whole_number("Maximum reminders", 0, 10),
        description="0 to 10. Reminders stop as soon as the customer records.",
    )
    expire_after_days = IntegerField(
        "Link expires after (days)",
        validators=whole_number("The expiry", 1, 365),
        description="Days after the first message; after that the link is closed. A change applies to links still open.",
    )
    include_products = TextAreaField(
        "Only these products",
        render_kw={"rows": 2},
        description="Product ids or SKUs, separated by commas or new lines. Empty: every product.",
    )
    exclude_products = TextAreaField(
        "Never these products", render_kw={"rows": 2}, description="Product ids or SKUs that are never asked about."
    )
    min_order_total = DecimalField(
        "Minimum order total",
        places=2,
        validators=[Optional(), NumberRange(min=0, message="The minimum order total must not be negative.")],
        description="In the order's currency. Empty: any total.",
    )
    exclude_tags = TextAreaField(
        "Skip customers tagged",
        render_kw={"rows": 2},
        description="Customer or order tags, e.g. wholesale, no-marketing.",
    )
    email_send_window = StringField(
        "Email send window",
        validators=[Length(max=20)],
        description="Shop time, HH:MM-HH:MM (e.g. 08:00-21:00). Empty or 'any': any time.",
    )
    sms_send_window = StringField(
        "SMS send window",
        validators=[Length(max=20)],
        description="Shop time. Texts outside it wait for the window to open.",
    )
    auto_approve_min_rating = SelectField(
        "Approve on arrival",
        choices=[
            SelectChoice("", "No: every testimonial waits for you"),
            SelectChoice("5", "Rated 5 stars"),
            SelectChoice("4", "Rated 4 stars or more"),
            SelectChoice("3", "Rated 3 stars or more"),
        ],
        coerce=optional_int,
        validate_choice=False,
        description="Approved testimonials appear on your shop's wall at once. Unrated ones always wait.",
    )
    prompt_heading = StringField(
        "Heading",
        validators=[Length(max=200)],
        description="The big line on the customer's page. Empty: 'Hi Ada, how do you like it?'",
    )
    prompt_question_1 = StringField(
        "Question 1",
        validators=[Length(max=200)],
        description="Up to three questions to guide the customer, e.g. 'What made you choose it?'",
    )
    prompt_question_2 = StringField("Question 2", validators=[Length(max=200)])
    prompt_question_3 = StringField("Question 3", validators=[Length(max=200)])
    consent_text = TextAreaField(
        "Consent wording",
        validators=[Length(max=1000)],
        render_kw={"rows": 2},
        description="The sentence beside the box the customer checks to let you use their testimonial; stored "
        "with each submission. Empty: the shop's wording from Settings.",
    )
    thank_you_text = TextAreaField(
        "Thank-you text",
        validators=[Length(max=2000)],
        render_kw={"rows": 2},
        description="Shown after the customer sends their testimonial, e.g. a discount code. Optional.",
    )
    # The template selects (TEMPLATE_FIELDS) are added below the class.
    submit = SubmitField("Save campaign")

    def __init__(self, *args, creating=False, **kwargs):
        super().__init__(*args, **kwargs)
        if not creating:
            del self.status
        templates = db.session.scalars(
            select(MessageTemplate).order_by(MessageTemplate.kind, MessageTemplate.name)
        ).all()
        for field, channel, kind in self.template_fields():
            # The channel's templates written for this kind first, then its others.
            ordered = sorted(
                (t for t in templates if t.channel == channel), key=lambda t: (t.kind != kind, t.name.lower())
            )
            field.choices = [SelectChoice(t.id, f"{t.name} ({KIND_WORDS.get(t.kind, t.kind)})") for t in ordered] or [
                SelectChoice("", f"— no {channel_name(channel, in_sentence=True)} templates yet —")
            ]
        for field, channel, _number in self.reminder_fields():
            ordered = sorted(
                (t for t in templates if t.channel == channel), key=lambda t: (t.kind != "reminder", t.name.lower())
            )
            field.choices = [SelectChoice("", SAME_AS_REMINDERS)] + [
                SelectChoice(t.id, f"{t.name} ({KIND_WORDS.get(t.kind, t.kind)})") for t in ordered
            ]

    def template_fields(self):
        """(field, channel, kind) of each template select, in TEMPLATE_FIELDS order."""
        return [(self[name], channel, kind) for name, (channel, kind) in TEMPLATE_FIELDS.items()]

    def reminder_fields(self, channel=None):
        """(field, channel, reminder number) of each per-reminder template select."""
        return [
            (self[name], ch, number)
            for name, (ch, number) in REMINDER_FIELDS.items()
            if channel is None or ch == channel
        ]

    def validate_reminder_delay_days(self, field):
        if self.reminder_enabled.data and field.data is not None and field.data < 1:
            raise ValidationError("The reminder delay must be at least 1 day when reminders are on.")

    def _needs(self, channel, kind):
        if self.channel.data not in (channel, "both"):
            return False
        return kind == "initial" or (self.reminder_enabled.data and (self.max_reminders.data or 0) > 0)

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for field, channel, kind in self.template_fields():
            valid_ids = {choice.value for choice in field.choices if choice.value != ""}
            if field.data is not None and field.data not in valid_ids:
                field.errors.append(f"Choose one of the {channel_name(channel, in_sentence=True)} templates.")
                ok = False
            elif field.data is None and self._needs(channel, kind):
                field.errors.append(
                    f"This campaign sends {channel_name(channel, in_sentence=True)}: choose a template for its {KINDS[kind]} "
                    "(create one under Templates)."
                )
                ok = False
        for field, channel, _number in self.reminder_fields():
            valid_ids = {choice.value for choice in field.choices if choice.value != ""}
            if field.data is not None and field.data not in valid_ids:
                field.errors.append(
                    f"Choose one of the {channel_name(channel, in_sentence=True)} templates, or “{SAME_AS_REMINDERS}”."
                )
                ok = False
        return ok

    def settings(self):
        """The form's values as the campaign services take them."""
        values = {name: self[name].data for name in SETTINGS}
        for name in LIST_FIELDS:
            values[name] = split_list(values[name])
        # "" clears the minimum / window (the services drop None as "unchanged").
        values["min_order_total"] = values["min_order_total"] if values["min_order_total"] is not None else ""
        for name in ("email_send_window", "sms_send_window"):
            values[name] = (values[name] or "").strip()
        values["auto_approve_min_rating"] = values["auto_approve_min_rating"] or 0  # 0 clears it
        if "status" in self:
            values["status"] = self.status.data
        for name in PAGE_FIELDS:
            values[name] = (self[name].data or "").strip()
        values["prompt_questions"] = [q for q in (self[f"prompt_question_{i}"].data for i in (1, 2, 3)) if q]
        chosen = {}
        for field, channel, number in self.reminder_fields():
            if field.data is not None:
                chosen.setdefault(channel, {})[str(number)] = field.data
        values["reminder_template_ids"] = chosen  # {} clears every choice
        return values

    def fill_from(self, campaign):
        for name in SETTINGS:
            value = getattr(campaign, name)
            if name in LIST_FIELDS:
                value = "\n".join(value or [])
            self[name].data = value
        for name in PAGE_FIELDS:
            self[name].data = getattr(campaign, name) or ""
        questions = list(campaign.prompt_questions or [])
        for i in (1, 2, 3):
            self[f"prompt_question_{i}"].data = questions[i - 1] if len(questions) >= i else ""
        chosen = campaign.reminder_template_map()
        for field, channel, number in self.reminder_fields():
            field.data = chosen.get((channel, number))


# WTForms' dynamic form composition: fields set on the class after it is made.
for _name, (_channel, _kind) in TEMPLATE_FIELDS.items():
    _label = f"{CHANNELS[_channel]}: {KINDS[_kind]}"  # "Email: first message" … "SMS: reminders"
    setattr(CampaignForm, _name, SelectField(_label, coerce=optional_int, validate_choice=False))
for _name, (_channel, _number) in REMINDER_FIELDS.items():
    setattr(CampaignForm, _name, SelectField(f"Reminder {_number}", coerce=optional_int, validate_choice=False))


class TemplateForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the template a name."), Length(max=120)])
    channel = SelectField("Channel", choices=CHANNELS)
    kind = SelectField("Used for", choices={"initial": "The first message", "reminder": "Reminders"})
    mode = SelectField(
        "Editor",
        choices={
            "simple": "Simple: heading, paragraphs and a button in your email layout",
            "html": "HTML: write the whole email yourself",
        },
        default="html",
    )
    subject = StringField("Subject", validators=[Length(max=255)], description="Email only. Variables work here too.")
    heading = StringField("Heading", validators=[Length(max=255)], description="The large first line of the email.")
    body = TextAreaField(
        "Paragraphs",
        render_kw={"rows": 7},
        description="Plain words; an empty line starts a new paragraph. Variables work here, e.g. {{ first_name }}.",
    )
    button_text = StringField(
        "Button text",
        validators=[Length(max=80)],
        default="Record my video",
        description="The one button; it opens the customer's recording page.",
    )
    html = TextAreaField(
        "HTML body",
        render_kw={"rows": 12, "class": "mono"},
        description="Email only. Values are HTML-escaped for you. Empty: the text body is sent alone.",
    )
    text = TextAreaField(
        "Text body",
        render_kw={"rows": 8, "class": "mono"},
        description="The SMS itself, or the plain-text email part (empty: made from the HTML).",
    )
    accept_segments = BooleanField("Yes, send it as more than one text message (each costs the price of one SMS)")
    is_default = BooleanField("New campaigns start with this template (for this channel and use)")
    submit = SubmitField("Save template")
    preview = SubmitField("Preview", render_kw={"formnovalidate": True})

    def validate_subject(self, field):
        if self.channel.data == "email" and not (field.data or "").strip():
            raise ValidationError("An email needs a subject.")

    def validate_heading(self, field):
        if self.channel.data == "email" and self.mode.data == "simple" and not (field.data or "").strip():
            raise ValidationError("The email needs a heading.")

    def validate_body(self, field):
        if self.channel.data == "email" and self.mode.data == "simple" and not (field.data or "").strip():
            raise ValidationError("Write at least one paragraph.")

    def validate_text(self, field):
        if self.channel.data == "sms" and not (field.data or "").strip():
            raise ValidationError("The text of the SMS is required.")
        if (
            self.channel.data == "email"
            and self.mode.data == "html"
            and not (field.data or "").strip()
            and not (self.html.data or "").strip()
        ):
            raise ValidationError("Write an HTML body or a text body.")


class TestSendForm(FlaskForm):
    to = StringField(
        "Send a test to", validators=[DataRequired(message="Enter an address or phone number."), Length(max=254)]
    )
    send = SubmitField("Send test")
