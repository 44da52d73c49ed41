"""How every screen names things: providers, messages, times, and contacts shown masked
(pure functions: strings in, strings out). Channel names belong to the campaign model
(``app.campaigns.models.CHANNEL_NAMES`` and ``channel_name``)."""

import re

from app.settings.dates import DATETIME_FORMAT, to_shop_time

# How the merchant knows each provider (their own spelling).
PROVIDER_NAMES = {"sendgrid": "SendGrid", "twilio": "Twilio", "outbox": "the outbox"}
PHONE = re.compile(r"\+[1-9]\d{6,14}\b")


def provider_name(provider):
    """ "SendGrid", "Twilio"; an unknown name as it is."""
    return PROVIDER_NAMES.get(provider, provider or "")


def message_name(slot, *, article=False):
    """Slot 0 is "the first message", as on the Campaigns and Templates screens; k is "reminder k"."""
    if slot == 0:
        return "the first message" if article else "first message"
    return f"reminder {slot}"


def short_time(value):
    """``2026-11-24 10:00`` in the shop's time zone: the dashboard's one date format."""
    if value is None:
        return "—"
    return to_shop_time(value).strftime(DATETIME_FORMAT)


def mask_phone(phone):
    """+15551234567 → +1•••••4567: enough to recognise, not enough to copy."""
    if not phone:
        return ""
    if len(phone) <= 6:
        return "•" * len(phone)
    return f"{phone[:2]}•••••{phone[-4:]}"


def mask_phones(text):
    """Every E.164 phone number in ``text`` masked; e-mail addresses left as they are."""
    return PHONE.sub(lambda m: mask_phone(m.group(0)), text or "")


def mask_email(email):
    """ada@example.com → a•••@example.com (for the timeline of a contact change)."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else mask_phone(email)
