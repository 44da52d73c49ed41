"""``POST /webhooks/orders``: the generic order webhook (step 1).

Answers are JSON, always. An error writes nothing: validation happens before the single
transaction that records the event and its requests.
"""

import logging

from flask import Blueprint, current_app, jsonify, request

from app.clock import arrival_time
from app.extensions import csrf, db
from app.intake.schema import SchemaError, parse_order_event
from app.intake.services import EventIdReused, ingest
from app.transactions import commit_with_retry
from app.webhooks import BodyRefused, parse_json, problem, read_limited_body, refuse_unstorable, too_large_message
from app.webhooks.signatures import order_signature_valid

bp = Blueprint("intake", __name__)
log = logging.getLogger("app.intake")


def refuse(status, message, field=None):
    """A refused order webhook: the sender learns why from the answer, the operator from the
    log (nothing else is written, so this line is the only trace on the server)."""
    log.warning("order webhook refused (%s): %s%s", status, message[:300], f" [field {field}]" if field else "")
    return problem(status, message, field)


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
        return refuse(413, too_large_message())
    secret = current_app.config.get("ORDER_WEBHOOK_SECRET")
    if secret and not order_signature_valid(secret, raw, request.headers.get("X-Webhook-Signature")):
        return refuse(401, "missing or invalid X-Webhook-Signature (expected sha256=<hex HMAC-SHA256 of the body>)")
    if request.mimetype != "application/json":
        return refuse(415, "Content-Type must be application/json")
    try:
        body = parse_json(raw)
        refuse_unstorable(body, raw)
    except BodyRefused as exc:
        return refuse(400, exc.message, exc.field)
    try:
        event = parse_order_event(body)
    except SchemaError as exc:
        return refuse(400, exc.message, exc.field)
    cancel_items = None
    if event.event_type == "order.refunded" and event.items:
        cancel_items = [item.id for item in event.items]  # a partial refund names its items
    try:
        received_at, raw_text = arrival_time(), raw.decode("utf-8")
        record, duplicate = commit_with_retry(
            lambda attempt: ingest(event, raw_text, received_at, attempt=attempt, cancel_item_ids=cancel_items)
        )
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
