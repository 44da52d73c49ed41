"""``current_settings()``: the shop's settings as they apply right now.

Each field's value is the one saved on the Settings screen when there is one, else the
app's configuration (an environment variable, or its default in ``config.py``). The
resolved settings are cached per process with the row's ``version``; every request (and
every scheduler tick — one app context) reads that version once, an indexed one-row
read, and rebuilds the cache only when another process or request saved a change. So a
save applies at once everywhere, without a restart.
"""

import os
import re
from dataclasses import dataclass, field
from email.utils import formataddr

from flask import current_app, g, has_app_context
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.settings.models import SETTINGS_ROW_ID, ShopSettings

DEFAULT_BRAND_COLOR = "#3b5bdb"
DEFAULT_CONSENT = "{shop_name} may show my testimonial and first name on its website."


@dataclass(frozen=True)
class Field:
    name: str  # attribute of Settings and column of ShopSettings
    label: str
    config_key: str | None  # app.config key (and environment variable) giving the first value
    default: str | None = None  # when the configuration has none either
    help: str = ""


FIELDS = (
    Field(
        "shop_name",
        "Shop name",
        "SHOP_NAME",
        "Demo Shop",
        "Shown in the dashboard, in every message and on the customer's page.",
    ),
    Field(
        "brand_color",
        "Brand colour",
        "BRAND_COLOR",
        DEFAULT_BRAND_COLOR,
        "Buttons and accents of the emails and the customer's page (#rrggbb).",
    ),
    Field(
        "email_from_name",
        "Sender name",
        "EMAIL_FROM_NAME",
        None,
        "The name customers see as the sender of the emails. Empty: the shop name.",
    ),
    Field(
        "email_from",
        "Sender address",
        "EMAIL_FROM",
        "reviews@shop.example",
        "With SendGrid, an address (or domain) verified in your SendGrid account.",
    ),
    Field(
        "reply_to",
        "Reply-to address",
        "EMAIL_REPLY_TO",
        None,
        "Where customers' replies go. Empty: to the sender address.",
    ),
    Field(
        "timezone",
        "Time zone",
        "SHOP_TIMEZONE",
        "UTC",
        "An IANA name such as Europe/Berlin. Dates in the dashboard and quiet hours use it.",
    ),
    Field(
        "public_base_url",
        "Public address",
        "PUBLIC_BASE_URL",
        "http://127.0.0.1:5000",
        "The address customers' links and provider callbacks use, e.g. https://reviews.example.com.",
    ),
    Field(
        "quiet_hours",
        "Quiet hours",
        "QUIET_HOURS",
        None,
        "No message on any channel in this time of day (shop time), e.g. 21:00-08:00, on top of "
        "each campaign's own send windows. Empty: none.",
    ),
    Field(
        "consent_text",
        "Consent wording",
        "CONSENT_TEXT",
        None,
        "The sentence the customer ticks before sending a testimonial. Empty: the standard wording.",
    ),
)


@dataclass(frozen=True)
class Settings:
    shop_name: str
    brand_color: str
    email_from_name: str | None
    email_from: str
    reply_to: str | None
    timezone: str
    public_base_url: str
    quiet_hours: str | None
    consent_text: str | None
    version: int = 0
    logo_type: str | None = None
    logo_width: int | None = None
    logo_height: int | None = None
    # field name -> ("screen" | "environment" | "default", the configuration's own value)
    sources: dict = field(default_factory=dict, compare=False)

    @property
    def name(self):
        return self.shop_name

    @property
    def has_logo(self):
        return self.logo_type is not None

    @property
    def sender_name(self):
        return self.email_from_name or self.shop_name

    @property
    def sender(self):
        """``"Name <address>"`` for the From header."""
        return formataddr((self.sender_name, self.email_from))

    @property
    def consent(self):
        return self.consent_text or DEFAULT_CONSENT.format(shop_name=self.shop_name)

    def logo_path(self):
        """The logo's path on this server (versioned: a new upload is a new address)."""
        return f"/brand/logo?v={self.version}" if self.has_logo else None  # also outside a request

    def logo_url(self):
        """The logo's absolute address, for emails (None without a logo)."""
        path = self.logo_path()
        return f"{self.public_base_url}{path}" if path else None

    def theme_path(self):
        return f"/brand/theme.css?v={self.version}"

    def link(self, path):
        return f"{self.public_base_url}{path}"

    def source(self, name):
        return self.sources.get(name, ("default", None))


def configured_value(f, config):
    """The value a field has without the screen, and where it comes from."""
    value = config.get(f.config_key) if f.config_key else None
    if f.config_key and os.environ.get(f.config_key) not in (None, ""):
        return (value or f.default), "environment"
    if value in (None, "") or value == f.default:
        return f.default, "default"
    return value, "configuration"


def build_settings(row, config):
    values, sources = {}, {}
    for f in FIELDS:
        configured, origin = configured_value(f, config)
        saved = getattr(row, f.name) if row is not None else None
        if saved not in (None, ""):
            values[f.name], sources[f.name] = saved, ("screen", configured)
        else:
            values[f.name], sources[f.name] = configured, (origin, configured)
    values["public_base_url"] = (values["public_base_url"] or "").rstrip("/")
    if not re.match(r"^#[0-9a-fA-F]{6}$", values["brand_color"] or ""):
        values["brand_color"] = DEFAULT_BRAND_COLOR  # BRAND_COLOR=blue in the environment: no CSS injection
    extra = {}
    if row is not None:
        extra = {
            "version": row.version,
            "logo_type": row.logo_type,
            "logo_width": row.logo_width,
            "logo_height": row.logo_height,
        }
    return Settings(**values, **extra, sources=sources)


def _read(query):
    """One short read. Inside the session's transaction, through it (a second connection
    would wait for the first one's lock on SQLite); outside one, on a connection of its own
    that is returned at once — the session stays outside any transaction, as callers that
    are about to call a provider rely on."""
    if db.session().in_transaction():
        return db.session.execute(query).first()
    with db.engine.connect() as conn:
        return conn.execute(query).first()


SETTINGS_COLUMNS = [c for c in ShopSettings.__table__.c if c.name != "logo"]  # the logo's bytes stay put


def current_settings():
    """The settings in force (cached per process; one version read per app context)."""
    if not has_app_context():
        raise RuntimeError("current_settings() needs an app context")
    cached_here = g.get("shop_settings")
    if cached_here is not None:
        return cached_here
    app = current_app._get_current_object()
    cache = app.extensions.get("shop_settings")
    if g.get("database_unusable"):
        return cache or build_settings(None, app.config)
    try:
        found = _read(select(ShopSettings.version).where(ShopSettings.id == SETTINGS_ROW_ID))
        version = found[0] if found else None
        if cache is None or cache.version != version:
            row = _read(select(*SETTINGS_COLUMNS).where(ShopSettings.id == SETTINGS_ROW_ID))
            cache = build_settings(row, app.config)
            app.extensions["shop_settings"] = cache
    except SQLAlchemyError:
        # A database that cannot be read (down, or not migrated yet): the configuration's
        # values, so that an error page or a CLI command still has a shop name.
        db.session.rollback()
        return cache or build_settings(None, app.config)
    g.shop_settings = cache
    return cache


def forget_cached_settings():
    """After a save in this process: the next read rebuilds from the row."""
    g.pop("shop_settings", None)
    current_app.extensions.pop("shop_settings", None)


def settings_context():
    """Jinja context: ``shop`` on every page (dashboard, customer pages, error pages)."""
    return {"shop": current_settings()}
