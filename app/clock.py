"""Time helpers. Everything is timezone-aware UTC; services take ``now`` as an argument.

The app reads the current time only through ``now()``, which tests replace with a
controllable clock (``app.config["CLOCK"]``).
"""

from datetime import UTC, datetime

from flask import current_app, g, has_app_context, has_request_context


def utcnow():
    return datetime.now(UTC)


def now():
    clock = current_app.config.get("CLOCK") if has_app_context() else None
    return clock() if clock else utcnow()


def stamp_arrival():
    """``before_request``, registered first: the moment this request reached the app."""
    g.arrived_at = now()


def arrival_time():
    """When the current request arrived: a webhook's ``received_at`` is this moment, not
    the end of whatever the request waited for (a body upload, the database write lock)."""
    arrived = g.get("arrived_at") if has_request_context() else None
    return arrived or now()


def parse_rfc3339(value):
    """Parse an RFC 3339 timestamp with an offset into an aware UTC datetime.

    Raises ValueError when the value is not a string, has no offset, or is not a time.
    """
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValueError("must be an RFC 3339 timestamp such as 2026-11-20T14:03:00Z")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("must include a UTC offset, e.g. 2026-11-20T14:03:00Z")
    return parsed.astimezone(UTC)


def as_utc(value):
    """SQLite hands back naive datetimes; they are UTC by construction."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def isoformat(value):
    value = as_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
