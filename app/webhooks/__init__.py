"""Receiving webhooks: what the order, Shopify, SendGrid and Twilio endpoints share.

Every webhook answers in JSON, with a 4xx that says what was wrong and writes nothing
when the call cannot be accepted: ``problem`` builds that answer. Bodies are read up to
``WEBHOOK_MAX_BYTES`` (``read_limited_body``, ``limit_form_body``) and JSON is parsed
strictly (``parse_json``: UTF-8, no NaN or Infinity, no nesting deep enough to exhaust the
stack). Who sent a call is checked in ``app.webhooks.signatures``.
"""

import json

from flask import current_app, jsonify, request

from app.input_guard import unstorable_text

UNSTORABLE = "{} contains a NUL character (\\u0000) or an unpaired surrogate (\\ud800…), which no field accepts"


class BodyRefused(ValueError):
    """A body no endpoint can accept (a 400); ``field`` names the part at fault, if any."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message, self.field = message, field


def problem(status, message, field=None, **extra):
    """A refused (or failed) webhook call's JSON answer: ``{"error": …, "field": …}``."""
    body = {"error": message, **extra}
    if field is not None:
        body["field"] = field
    return jsonify(body), status


def read_limited_body():
    """The raw body, or None when it is over the webhook size limit."""
    limit = current_app.config["WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return None
    raw = request.stream.read(limit + 1)
    return None if len(raw) > limit else raw


def too_large_message():
    return f"body larger than {current_app.config['WEBHOOK_MAX_BYTES']} bytes"


def limit_form_body():
    """For a form-encoded webhook: a body over the limit is a 413 before it is parsed."""
    request.max_content_length = current_app.config["WEBHOOK_MAX_BYTES"]


def parse_json(raw):
    """The body as JSON, strictly; raises BodyRefused when it is not."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
    except RecursionError:
        raise BodyRefused("malformed JSON: nested too deeply") from None
    except (UnicodeError, ValueError) as exc:
        raise BodyRefused(f"malformed JSON: {exc}") from exc


def reject_constant(name):
    """``json.loads`` accepts NaN, Infinity and -Infinity, which JSON does not."""
    raise ValueError(f"{name} is not valid JSON")


def refuse_unstorable(document, raw=None):
    """Raises BodyRefused when a string in the document could not be stored (NUL, lone surrogate).

    ``raw``: the JSON text the document was parsed from (``parse_json``). Without a
    ``\\u`` escape in it, no string of the document can hold either: the strict parser
    refuses a raw control character, and the UTF-8 decoding a byte sequence that encodes
    a surrogate. The document is then not walked at all."""
    if raw is not None and b"\\u" not in raw:
        return
    unstorable = unstorable_text(document, "")
    if unstorable is not None:
        raise BodyRefused(UNSTORABLE.format(unstorable or "the body"), unstorable or None)
