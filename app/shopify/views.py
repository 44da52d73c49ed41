"""``POST /webhooks/shopify``: Shopify's order, fulfillment and refund webhooks.

Verify (HMAC of the raw body), record, answer: Shopify counts anything but a 2xx within
five seconds as a failure and retries the same payload for hours. An unverified request
writes nothing.
"""

import logging

from flask import Blueprint, current_app, jsonify, request

from app.clock import arrival_time
from app.extensions import csrf, db
from app.intake.schema import SchemaError
from app.shopify.mapping import PayloadProblem, WebhookMeta, supported_time
from app.shopify.services import IGNORED, receive
from app.transactions import commit_with_retry
from app.webhooks import BodyRefused, parse_json, problem, read_limited_body, refuse_unstorable, too_large_message
from app.webhooks.signatures import shopify_hmac_valid

bp = Blueprint("shopify", __name__)
log = logging.getLogger("app.shopify")


@bp.post("/webhooks/shopify")
@csrf.exempt
def shopify_webhook():
    raw = read_limited_body()
    if raw is None:
        return problem(413, too_large_message())
    secret = (current_app.config.get("SHOPIFY_WEBHOOK_SECRET") or "").strip()
    if not secret:
        log.error("Shopify webhook refused: SHOPIFY_WEBHOOK_SECRET is not set")
        return problem(
            503,
            "Shopify webhooks are not configured on this server: set SHOPIFY_WEBHOOK_SECRET "
            "(see docs/shopify.md); unverified order data is never accepted",
        )
    if not shopify_hmac_valid(secret, raw, request.headers.get("X-Shopify-Hmac-Sha256")):
        log.warning(
            "Shopify webhook refused: missing or wrong X-Shopify-Hmac-Sha256 (topic %s, shop %s)",
            request.headers.get("X-Shopify-Topic"),
            request.headers.get("X-Shopify-Shop-Domain"),
        )
        return problem(
            401, "missing or invalid X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw body with the webhook secret)"
        )
    meta, bad_header = _meta()
    if bad_header:
        return _refuse(bad_header[1], field=bad_header[0])
    try:
        payload = parse_json(raw)
        refuse_unstorable(payload, raw)
    except BodyRefused as exc:
        # Shopify will retry the same bytes, which will not parse any better: say so loudly.
        return _refuse(exc.message, meta, field=exc.field)
    try:
        raw_text = raw.decode("utf-8")
        record, duplicate = commit_with_retry(lambda attempt: receive(meta, payload, raw_text, attempt))
    except SchemaError as exc:  # PayloadProblem, or a send time past the supported years
        db.session.rollback()
        return _refuse(f"{meta.topic} payload: {exc.message}", meta, field=exc.field)
    return _answer(record, duplicate)


def _meta():
    headers = request.headers
    for name in ("X-Shopify-Topic", "X-Shopify-Webhook-Id"):
        value = (headers.get(name) or "").strip()
        if not value:
            return None, (name, f"header {name} is required")
        if len(value) > 200:
            return None, (name, f"header {name} is longer than 200 characters")
    triggered = headers.get("X-Shopify-Triggered-At")
    try:
        triggered_at = supported_time(triggered, "X-Shopify-Triggered-At") if triggered else None
    except PayloadProblem as exc:
        return None, ("X-Shopify-Triggered-At", f"header {exc.message}")
    except ValueError:
        triggered_at = None  # not a time: the receiving time stands in
    return WebhookMeta(
        topic=headers["X-Shopify-Topic"].strip().lower(),
        webhook_id=headers["X-Shopify-Webhook-Id"].strip(),
        event_id=(headers.get("X-Shopify-Event-Id") or "").strip()[:255] or None,
        shop_domain=(headers.get("X-Shopify-Shop-Domain") or "").strip().lower()[:255] or None,
        triggered_at=triggered_at,
        received_at=arrival_time(),
    ), None


def _refuse(message, meta=None, field=None):
    log.warning(
        "Shopify webhook refused (400, nothing recorded; Shopify will retry and fail again): %s "
        "[topic %s, webhook %s, shop %s]",
        message,
        meta and meta.topic,
        meta and meta.webhook_id,
        meta and meta.shop_domain,
    )
    return problem(400, message, field)


def _answer(record, duplicate):
    answer = {
        "duplicate": duplicate,
        "event_id": record.event_id,
        "topic": record.topic,
        "order_id": record.order_id or None,
        "summary": record.summary,
    }
    if record.event_type == IGNORED:
        return jsonify({"status": "ignored", "reason": record.summary, **answer}), 200
    return jsonify({"status": "accepted", **answer, **record.outcome()}), 200 if duplicate else 202
