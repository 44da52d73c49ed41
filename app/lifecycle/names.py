"""How every screen names things: providers, messages, times, and contacts shown masked
(pure functions: strings in, strings out). Channel names belong to the campaign model
(``app.campaigns.models.CHANNEL_NAMES`` and ``channel_name``)."""

from app.optouts.masks import mask_email, mask_phone, mask_phones  # noqa: F401  (every screen's names for them)
from app.settings.dates import DATETIME_FORMAT, to_shop_time

# How the merchant knows each provider (their own spelling).
PROVIDER_NAMES = {"sendgrid": "SendGrid", "twilio": "Twilio", "outbox": "the outbox"}


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
