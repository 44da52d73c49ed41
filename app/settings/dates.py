"""One way to show a moment in the dashboard: the shop's time zone, "2026-12-03 14:05",
with the UTC time in the tooltip and a machine-readable ``datetime`` attribute."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import has_app_context
from markupsafe import Markup, escape

from app.settings.current import current_settings

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M"


def shop_zone():
    """The shop's zone (UTC outside an app: pure functions tested on their own)."""
    return ZoneInfo(current_settings().timezone) if has_app_context() else UTC


def to_shop_time(moment):
    if moment.tzinfo is None:  # our columns are UTC; a naive value is UTC too
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(shop_zone())


def shop_datetime(moment, *, date_only=False, seconds=False):
    """``<time>`` markup for a datetime (empty for None)."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return escape(str(moment))
    local = to_shop_time(moment)
    utc = local.astimezone(UTC)
    fmt = DATE_FORMAT if date_only else DATETIME_FORMAT + (":%S" if seconds else "")
    title = f"{utc:%Y-%m-%d %H:%M:%S} UTC"
    if local.utcoffset():
        title = f"{local:%Y-%m-%d %H:%M} {local.tzname()} · {title}"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(utc.isoformat(), title, local.strftime(fmt))


def shop_date(moment):
    return shop_datetime(moment, date_only=True)


def month_day(moment):
    """ "December 4": a day as a customer's page names it, in the shop's time zone (a
    reminder due at 02:00 UTC on the 5th is still the 4th in New York)."""
    local = to_shop_time(moment)
    return f"{local:%B} {local.day}"


def shop_zone_label():
    """How date inputs say which zone they mean: "Europe/Berlin" (or "UTC")."""
    return current_settings().timezone


def register_filters(app):
    app.add_template_filter(shop_datetime, "shopdate")
    app.add_template_filter(shop_date, "shopday")
    app.add_template_filter(month_day, "month_day")
    app.add_template_global(shop_zone_label, "shop_zone")
