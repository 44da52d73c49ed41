"""Shopify webhooks through the one intake path.

Every verified webhook becomes an ``order_events`` row (the intake log), with its topic,
Shopify event id and shop: triggers and cancellations through
``app.intake.services.ingest``; topics and statuses that start nothing as an
``ignored`` row with the reason. Flushes only: the view commits. Those stored payloads are also our memory of the order:
a ``fulfillment_events/create`` carries only ids, so its line items are looked up in the
fulfillment (or order) payloads received earlier for the same order.
"""

import json
import logging
import re
from dataclasses import replace

from sqlalchemy import select

from app.extensions import db
from app.intake.models import OrderEvent, OrderEventItem
from app.intake.services import ingest
from app.shopify import mapping
from app.shopify.mapping import FulfillmentChanged, FulfillmentDelivered, Ignore, PayloadProblem
from app.transactions import log_after_commit

log = logging.getLogger("app.shopify")

SOURCE = "shopify"
IGNORED = "ignored"  # order_events.event_type of a webhook that started nothing
WAITING = "waiting for the items of fulfillment"


def receive(meta, payload, raw_text, attempt=0):
    """Record and act on one verified webhook; returns (OrderEvent, duplicate). Flushes.

    Run through ``app.transactions.commit_with_retry``: a second delivery of the same
    webhook at the same moment raises IntegrityError, and the next ``attempt`` finds it."""
    earlier = find_delivery(meta)
    if earlier is not None:
        log.info(
            "duplicate Shopify webhook %s (%s) ignored: first received as event %s",
            meta.webhook_id,
            meta.topic,
            earlier.event_id,
        )
        return earlier, True
    routed = mapping.route(meta, payload)
    if isinstance(routed, FulfillmentChanged):
        routed = on_fulfillment(meta, routed)
    elif isinstance(routed, FulfillmentDelivered):
        routed = on_delivered_event(meta, routed)
    if isinstance(routed, Ignore):
        return record_ignored(meta, routed, raw_text)
    record, duplicate = ingest(
        routed.event,
        raw_text,
        meta.received_at,
        attempt=attempt,
        source=SOURCE,
        cancel_item_ids=routed.cancel_item_ids,
        on_recorded=lambda record: annotate(record, meta, routed),
    )
    log_after_commit(
        log, "Shopify %s webhook %s for order %s: %s", meta.topic, meta.webhook_id, record.order_id, record.summary
    )
    return record, duplicate


def find_delivery(meta):
    """The event row of an earlier delivery of this webhook: the same X-Shopify-Webhook-Id
    (a retry), or the same X-Shopify-Event-Id and topic (a second subscription)."""
    record = db.session.scalar(select(OrderEvent).where(OrderEvent.event_id == meta.intake_event_id))
    if record is None and meta.event_id:
        record = db.session.scalar(
            select(OrderEvent)
            .where(
                OrderEvent.source == SOURCE, OrderEvent.source_event_id == meta.event_id, OrderEvent.topic == meta.topic
            )
            .order_by(OrderEvent.id)
            .limit(1)
        )
    return record


def on_fulfillment(meta, change):
    """fulfillments/create|update: delivered now, or delivered earlier by a fulfillment
    event that had to wait for these items; otherwise remembered for later."""
    order = latest_order(meta.shop_domain, change.order_id)
    if is_cancelled(meta.shop_domain, change.order_id, order):
        return Ignore(f"order {change.order_id} is cancelled", change.order_id)
    waiting = waiting_events(meta.shop_domain, change.order_id, change.fulfillment_id)
    delivered_at = change.delivered_at or (min(at for _, at in waiting) if waiting else None)
    if delivered_at is None:
        return Ignore(
            f"fulfillment {change.fulfillment_id} shipment_status is {change.shipment_status or 'not set'}, "
            "not delivered; its items are kept for a later delivered event",
            change.order_id,
        )
    ingest = mapping.delivered_from_fulfillment(
        meta,
        change.fulfillment,
        delivered_at,
        order=order,
        refunded=refunded_ids(meta.shop_domain, change.order_id),
    )
    return replace(ingest, resolves=tuple(row.id for row, _ in waiting))


def on_delivered_event(meta, delivered):
    """fulfillment_events/create delivered: the items come from a stored fulfillment."""
    order = latest_order(meta.shop_domain, delivered.order_id)
    if is_cancelled(meta.shop_domain, delivered.order_id, order):
        return Ignore(f"order {delivered.order_id} is cancelled", delivered.order_id)
    fulfillment = stored_fulfillment(meta.shop_domain, delivered.order_id, delivered.fulfillment_id)
    if fulfillment is None:
        reason = (
            f"{WAITING} {delivered.fulfillment_id}: Shopify's delivered event names only the "
            "fulfillment; requests are created when its fulfillments/create webhook arrives"
        )
        return mapping.waiting_for_items(meta, delivered, reason)
    try:
        return mapping.delivered_from_fulfillment(
            meta,
            fulfillment,
            delivered.delivered_at,
            order=order,
            refunded=refunded_ids(meta.shop_domain, delivered.order_id),
        )
    except PayloadProblem as exc:  # an order payload's copy we could not read
        reason = f"{WAITING} {delivered.fulfillment_id}: the stored copy is unreadable ({exc.message})"
        return mapping.waiting_for_items(meta, delivered, reason)


def annotate(record, meta, routed):
    """Inside the intake transaction: what only Shopify knows, on the event row."""
    _stamp(record, meta)
    for left in routed.left_out:  # through record.items: the answer lists them too
        record.items.append(
            OrderEventItem(
                item_id=left.item_id, product_id=left.product_id, outcome="skipped", reason=left.reason[:255]
            )
        )
    if routed.summary:
        record.summary = routed.summary[:255]
    elif routed.left_out:
        counted = re.fullmatch(r"(\d+) created, (\d+) skipped", record.summary or "")
        if counted:  # the intake counted the items it saw; ours were skipped before it
            record.summary = f"{counted[1]} created, {int(counted[2]) + len(routed.left_out)} skipped"
    for waiting_id in routed.resolves:
        waiting = db.session.get(OrderEvent, waiting_id)
        waiting.summary = (f"items found in {meta.topic} (event {meta.intake_event_id}); requests were decided there")[
            :255
        ]


def record_ignored(meta, ignore, raw_text):
    """A webhook that starts nothing is still in the intake log, with why."""
    record = OrderEvent(
        source=SOURCE,
        event_id=meta.intake_event_id,
        event_type=IGNORED,
        order_id=ignore.order_id or "",
        occurred_at=meta.fallback_time(),
        received_at=meta.received_at,
        processed_at=meta.received_at,
        # No processing time: nothing was created, so it stays out of the creation SLO.
        processing_ms=None,
        summary=ignore.reason[:255],
        payload=raw_text,
    )
    _stamp(record, meta)
    db.session.add(record)
    db.session.flush()  # the same webhook delivered twice at once: IntegrityError, see receive
    log_after_commit(log, "Shopify %s webhook %s ignored: %s", meta.topic, meta.webhook_id, ignore.reason)
    return record, False


def _stamp(record, meta):
    record.topic = meta.topic
    record.source_event_id = meta.event_id
    record.shop_domain = meta.shop_domain


# -- what we know about an order from its earlier webhooks ------------------------------------


def stored_payloads(shop_domain, order_id, *topic_prefixes):
    """(event row, payload) of this order's earlier Shopify webhooks, newest first."""
    rows = db.session.scalars(
        select(OrderEvent)
        .where(OrderEvent.source == SOURCE, OrderEvent.order_id == order_id)
        .order_by(OrderEvent.id.desc())
    )
    for row in rows:
        if shop_domain and row.shop_domain and row.shop_domain != shop_domain:
            continue
        if not (row.topic or "").startswith(topic_prefixes):
            continue
        try:
            payload = json.loads(row.payload)
        except ValueError:
            continue
        if isinstance(payload, dict):
            yield row, payload


def latest_order(shop_domain, order_id):
    """The newest order payload (orders/*) received for this order, or None."""
    for _, payload in stored_payloads(shop_domain, order_id, "orders/"):
        if isinstance(payload.get("line_items"), list):
            return payload
    return None


def stored_fulfillment(shop_domain, order_id, fulfillment_id):
    """The fulfillment's newest payload: from fulfillments/* or inside an order payload."""
    for row, payload in stored_payloads(shop_domain, order_id, "fulfillments/", "orders/"):
        if row.topic.startswith("fulfillments/"):
            if str(payload.get("id")) == fulfillment_id and isinstance(payload.get("line_items"), list):
                return payload
        else:
            found = mapping.fulfillment_in_order(payload, fulfillment_id)
            if found is not None and isinstance(found.get("line_items"), list):
                return found
    return None


def is_cancelled(shop_domain, order_id, order):
    if order and order.get("cancelled_at"):
        return True
    return any(row.topic == "orders/cancelled" for row, _ in stored_payloads(shop_domain, order_id, "orders/"))


def refunded_ids(shop_domain, order_id):
    ids = set()
    for _, payload in stored_payloads(shop_domain, order_id, "refunds/"):
        ids |= mapping.refunded_line_item_ids({"refunds": [payload]})
    return frozenset(ids)


def waiting_events(shop_domain, order_id, fulfillment_id):
    """Earlier delivered events of this fulfillment still waiting for its items."""
    found = []
    for row, payload in stored_payloads(shop_domain, order_id, "fulfillment_events/"):
        if (row.summary or "").startswith(WAITING) and str(payload.get("fulfillment_id")) == fulfillment_id:
            found.append((row, row.occurred_at))  # the delivered time it was recorded with
    return found
