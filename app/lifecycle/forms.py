"""The Requests Log's filter form (a GET form: no CSRF token, nothing is changed by it)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from app.campaigns.models import CHANNEL_NAMES, CHANNELS
from app.lifecycle.queries import RequestFilter
from app.lifecycle.states import (
    CANCELLED,
    CLICKED,
    EXPIRED,
    FAILED,
    QUEUED,
    SCHEDULED,
    SENT,
    STATUSES,
    SUBMITTED,
)

# The Status filter's options: the status as every badge shows it, and what it means.
STATUS_HINTS = {
    SCHEDULED: "not sent yet",
    QUEUED: "being sent now",
    SENT: "waiting for the customer",
    CLICKED: "link opened",
    SUBMITTED: "testimonial received",
    FAILED: "needs your action",
    EXPIRED: "no testimonial in time",
    CANCELLED: "stopped",
}


class RequestFilterForm(FlaskForm):
    class Meta:
        csrf = False

    status = SelectField(
        "Status",
        default="",
        choices=[SelectChoice("", "Any status"), *[SelectChoice(s, f"{s} — {STATUS_HINTS[s]}") for s in STATUSES]],
    )
    campaign_id = SelectField("Campaign", default="", choices=[SelectChoice("", "Any campaign")])
    channel = SelectField(
        "Channel",
        default="",
        choices=[SelectChoice("", "Any channel"), *[SelectChoice(c, CHANNEL_NAMES[c]) for c in CHANNELS]],
    )
    created_from = DateField("Created from", validators=[Optional()])
    created_to = DateField("Created to", validators=[Optional()])
    sent_from = DateField("Sent from", validators=[Optional()])
    sent_to = DateField("Sent to", validators=[Optional()])
    has_error = BooleanField("Has error")
    q = StringField(
        "Search",
        validators=[Optional(), Length(max=254)],
        render_kw={"placeholder": "Order id, email, phone or product"},
    )  # product: id, SKU or title

    def __init__(self, formdata, campaigns, **kwargs):
        super().__init__(formdata=formdata, **kwargs)
        self.campaign_id.choices = [
            SelectChoice("", "Any campaign"),
            *[SelectChoice(str(cid), name) for cid, name in campaigns.items()],
        ]

    @staticmethod
    def _check_range(first, last):
        if first.data and last.data and first.data > last.data:
            raise ValidationError(f"'{first.label.text}' is after '{last.label.text}'.")

    def validate_created_to(self, field):
        self._check_range(self.created_from, field)

    def validate_sent_to(self, field):
        self._check_range(self.sent_from, field)

    def to_filter(self):
        return RequestFilter(
            status=self.status.data or None,
            campaign_id=int(self.campaign_id.data) if self.campaign_id.data else None,
            channel=self.channel.data or None,
            created_from=self.created_from.data,
            created_to=self.created_to.data,
            sent_from=self.sent_from.data,
            sent_to=self.sent_to.data,
            has_error=bool(self.has_error.data),
            q=(self.q.data or "").strip() or None,
        )


class ContactForm(FlaskForm):
    """Correct a request's e-mail address and phone number (validated by the service with
    the intake's rules; these validators only bound the length)."""

    email = StringField(
        "Email address", validators=[Length(max=254)], render_kw={"autocomplete": "off", "spellcheck": "false"}
    )
    phone = StringField(
        "Phone number",
        validators=[Length(max=40)],
        description="International format, e.g. +15551234567 (spaces and dashes are fine).",
        render_kw={"autocomplete": "off"},
    )
