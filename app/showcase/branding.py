"""The look of the public pages: the brand colour (from the shop's Settings) and which
origins may frame the wall (EMBED_ALLOWED_ORIGINS). One function each, so that their
source can change without touching the views."""

import logging
import re
from urllib.parse import urlsplit

from flask import current_app

from app.settings.current import DEFAULT_BRAND_COLOR, current_settings

log = logging.getLogger("app.showcase")

DEFAULT_BRAND_COLOUR = DEFAULT_BRAND_COLOR
HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
THEMES = ("light", "dark", "auto")


def brand_colour():
    """The accent colour of the wall and the share page: the shop's brand colour (Settings)."""
    value = (current_settings().brand_color or "").strip()
    return value if HEX_COLOUR.match(value) else DEFAULT_BRAND_COLOUR


def origin_or_none(text):
    """``https://shop.example[:port]`` from what the merchant typed, or None if it is not one."""
    text = text.strip().rstrip("/")
    if text == "*":
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        return None
    if not re.fullmatch(r"[A-Za-z0-9.*-]+", parts.hostname):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}" + (f":{port}" if port else "")


def embed_allowed_origins():
    """The origins that may put the wall in an iframe (EMBED_ALLOWED_ORIGINS)."""
    raw = current_app.config.get("EMBED_ALLOWED_ORIGINS") or ""
    origins = []
    for item in re.split(r"[\s,]+", raw):
        if not item:
            continue
        origin = origin_or_none(item)
        if origin is None:
            log.warning("EMBED_ALLOWED_ORIGINS: %r is not an origin (https://shop.example); left out", item[:100])
        elif origin not in origins:
            origins.append(origin)
    return origins


def frame_ancestors():
    """The CSP ``frame-ancestors`` value for the embeddable pages."""
    return " ".join(["'self'", *embed_allowed_origins()])
