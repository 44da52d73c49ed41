"""Saving the Settings screen. Flushes, never commits (the view commits).

A change of time zone or quiet hours replans the sends not made yet exactly like a
campaign edit does (``campaign_admin.services.reschedule_pending``): each pending slot goes back
to its planned time, and the next tick defers it to the new quiet hours' end, read in the
new zone.
"""

import logging
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from app.campaign_admin.services import reschedule_pending
from app.campaigns.models import ARCHIVED, Campaign
from app.extensions import db
from app.lifecycle import policy
from app.settings.current import FIELDS, current_settings, forget_cached_settings
from app.settings.images import ImageInvalid, sniff_image
from app.settings.models import SETTINGS_ROW_ID, ShopSettings

log = logging.getLogger("app.settings")

EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
LIMITS = {
    "shop_name": 80,
    "email_from_name": 80,
    "email_from": 254,
    "reply_to": 254,
    "timezone": 64,
    "public_base_url": 255,
    "consent_text": 300,
}
REPLANNING_FIELDS = ("timezone", "quiet_hours")


class SettingsInvalid(ValueError):
    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def clean_value(name, raw):
    """One field's submitted text → the value to store (None: not set on the screen)."""
    value = (raw or "").strip()
    if not value:
        return None
    if len(value) > LIMITS.get(name, 255):
        raise SettingsInvalid(f"at most {LIMITS.get(name, 255)} characters", name)
    if any(ord(c) < 32 for c in value):
        raise SettingsInvalid("must be a single line without control characters", name)
    if name == "brand_color":
        if not COLOR.match(value):
            raise SettingsInvalid("a colour as #rrggbb, e.g. #3b5bdb", name)
        return value.lower()
    if name in ("email_from", "reply_to"):
        if not EMAIL.match(value):
            raise SettingsInvalid("an email address such as reviews@yourshop.com", name)
        return value
    if name == "timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsInvalid(
                "not a time zone name; use an IANA name such as Europe/Berlin, America/New_York or UTC", name
            ) from None
        return value
    if name == "public_base_url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise SettingsInvalid("an address such as https://reviews.yourshop.com (http or https, no query)", name)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise SettingsInvalid("the port is not a number", name) from None
        return value.rstrip("/")
    if name == "quiet_hours":
        try:
            window = policy.quiet_hours_window(value)
        except policy.WindowInvalid as exc:
            raise SettingsInvalid(f"{exc}; quiet hours look like 21:00-08:00", name) from None
        return None if window is None else policy.SendWindow.parse(value).text()
    return value


def save_settings(form, now, *, logo=None, remove_logo=False, by=None):
    """Store the submitted fields (each: text, or empty for "use the environment's value")
    and the logo; returns how many pending sends were replanned. Raises SettingsInvalid."""
    before = current_settings()
    cleaned = {f.name: clean_value(f.name, form.get(f.name)) for f in FIELDS if f.name in form}
    values = dict(cleaned)
    if logo is not None:
        try:
            kind, width, height = sniff_image(logo)
        except ImageInvalid as exc:
            raise SettingsInvalid(str(exc), "logo") from None
        values.update(logo=logo, logo_type=kind, logo_width=width, logo_height=height)
    elif remove_logo:
        values.update(logo=None, logo_type=None, logo_width=None, logo_height=None)
    values.update(updated_at=now, updated_by=by)
    row = db.session.get(ShopSettings, SETTINGS_ROW_ID)
    for name, value in values.items():
        setattr(row, name, value)
    # Incremented in SQL (version = version + 1): two saves at once both count.
    row.version = ShopSettings.version + 1
    db.session.flush()
    db.session.refresh(row)
    forget_cached_settings()
    after = current_settings()
    replanned = 0
    if any(getattr(before, name) != getattr(after, name) for name in REPLANNING_FIELDS):
        for campaign in db.session.scalars(select(Campaign).where(Campaign.status != ARCHIVED)):
            replanned += reschedule_pending(campaign, now).requests
    log.info(
        "settings saved by %s (version %s): %s; %s pending sends replanned",
        by,
        after.version,
        ", ".join(sorted(set(values) - {"updated_at", "updated_by", "logo_type", "logo_width", "logo_height"}))
        or "nothing",
        replanned,
    )
    return replanned
