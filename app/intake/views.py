"""``POST /webhooks/orders``: the generic order webhook (step 1).

Answers are JSON, always. An error writes nothing: validation happens before the single
transaction that records the event and its requests.
"""

import hashlib
import hmac
import json
import logging

from flask import Blueprint, current_app, jsonify, request

from app.clock import arrival_time
from app.extensions import csrf, db
from app.input_guard import unstorable_text
from app.intake.schema import SchemaError, parse_order_event
from app.intake.services import EventIdReused, ingest_with_retry

bp = Blueprint("intake", __name__)
log = logging.getLogger("app.intake")


def problem(status, message, field=None, **extra):
    body = {"error": message, **extra}
    if field is not None:
        body["field"] = field
    return jsonify(body), status


def refuse(status, message, field=None):
    """A refused order webhook: the sender learns why from the answer, the operator from the
    log (nothing else is written, so this line is the only trace on the server)."""
    log.warning("order webhook refused (%s): %s%s", status, message[:300], f" [field {field}]" if field else "")
    return problem(status, message, field)


def signature_valid(secret, raw_body, header):
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest().encode()
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    given = header[len("sha256=") :].strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def read_limited_body():
    """The raw body, or None when it is over the webhook size limit."""
    limit = current_app.config["WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return None
    raw = request.stream.read(limit + 1)
    return None if len(raw) > limit else raw


@bp.post("/webhooks/orders")
@csrf.exempt
def order_webhook():
    if not current_app.config.get("ORDER_WEBHOOK_ENABLED", True):
        return refuse(
            404,
            "the generic order webhook is turned off on this server (ORDER_WEBHOOK_ENABLED=false); "
            "orders arrive through /webhooks/shopify",
        )
    raw = read_limited_body()
    if raw is None:
        return refuse(413, f"body larger than {current_app.config['WEBHOOK_MAX_BYTES']} bytes")
    secret = current_app.config.get("ORDER_WEBHOOK_SECRET")
    if secret and not signature_valid(secret, raw, request.headers.get("X-Webhook-Signature")):
        return refuse(401, "missing or invalid X-Webhook-Signature (expected sha256=<hex HMAC-SHA256 of the body>)")
    if request.mimetype != "application/json":
        return refuse(415, "Content-Type must be application/json")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        return refuse(400, "malformed JSON: nested too deeply")
    except (UnicodeError, ValueError) as exc:
        return refuse(400, f"malformed JSON: {exc}")
    unstorable = unstorable_text(body, "")
    if unstorable is not None:
        return refuse(400, UNSTORABLE.format(unstorable or "the body"), unstorable or None)
    try:
        event = parse_order_event(body)
    except SchemaError as exc:
        return refuse(400, exc.message, exc.field)
    cancel_items = None
    if event.event_type == "order.refunded" and event.items:
        cancel_items = [item.id for item in event.items]  # a partial refund names its items
    try:
        record, duplicate = ingest_with_retry(event, raw.decode("utf-8"), arrival_time(), cancel_item_ids=cancel_items)
    except EventIdReused as exc:
        db.session.rollback()
        return problem(409, exc.message, "event_id")  # logged by the service
    except SchemaError as exc:  # a time the app cannot store (SendTimeOutOfRange)
        db.session.rollback()
        return refuse(400, exc.message, exc.field)
    answer = {
        "status": "accepted",
        "duplicate": duplicate,
        "event_id": record.event_id,
        "order_id": record.order_id,
        **record.outcome(),
    }
    return jsonify(answer), 200 if duplicate else 202


UNSTORABLE = "{} contains a NUL character (\\u0000) or an unpaired surrogate (\\ud800…), which no field accepts"


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")
