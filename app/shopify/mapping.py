"""Shopify webhook payloads → the intake's ``OrderEventIn``. Pure functions, no database.

Shopify sends whole resources: an order (``orders/*``), a fulfillment (``fulfillments/*``),
a fulfillment event (``fulfillment_events/create``: only ids and a status) or a refund.
``route`` decides what a webhook means; the builders read the fields the intake needs,
leniently: a real Shopify payload is never refused for a detail our generic schema is
strict about (a phone written with spaces, a custom line item without a product). What
is left out is returned with its reason, so the intake log can show it.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.clock import parse_rfc3339
from app.intake.schema import (
    EARLIEST_SUPPORTED,
    LATEST_SUPPORTED,
    MAX_ID_LENGTH,
    CustomerIn,
    ItemIn,
    OrderEventIn,
    SchemaError,
)
from app.optouts.models import E164, EMAIL

# Topics whose payload is an order but that start nothing: kept (in the intake log) so a
# later fulfillment event can be matched with the order's customer, total and tags.
CONTEXT_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/edited")
FULFILLMENT_TOPICS = ("fulfillments/create", "fulfillments/update")
HANDLED_TOPICS = (
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/cancelled",
    "refunds/create",
    *FULFILLMENT_TOPICS,
    "fulfillment_events/create",
    *CONTEXT_TOPICS,
)
FULFILLED_LINE_STATUSES = ("fulfilled", "partial")
BROKEN_FULFILLMENT_STATUSES = ("cancelled", "error", "failure")


class PayloadProblem(SchemaError):
    """A signed payload that is not the resource its topic promises (answered 400)."""


@dataclass(frozen=True)
class WebhookMeta:
    """The headers Shopify sends with every webhook, and when we received it."""

    topic: str
    webhook_id: str  # X-Shopify-Webhook-Id: one per webhook, the same on its retries
    event_id: str | None  # X-Shopify-Event-Id: one per merchant action, shared by subscriptions
    shop_domain: str | None
    triggered_at: object  # datetime | None
    received_at: object  # datetime

    @property
    def intake_event_id(self):
        return f"shopify:{self.webhook_id}"

    def fallback_time(self):
        return self.triggered_at or self.received_at


@dataclass(frozen=True)
class LeftOut:
    item_id: str | None
    product_id: str | None
    reason: str


@dataclass(frozen=True)
class Ignore:
    """Nothing to do: answered 200 "ignored" with the reason (Shopify must not retry)."""

    reason: str
    order_id: str | None = None


@dataclass(frozen=True)
class Ingest:
    """An order event for the intake, plus what Shopify-side was left out and why."""

    event: OrderEventIn
    cancel_item_ids: tuple | None = None
    left_out: tuple = ()
    summary: str | None = None  # replaces the intake's summary (e.g. waiting for items)
    resolves: tuple = ()  # ids of earlier delivered events that waited for these items


@dataclass(frozen=True)
class FulfillmentChanged:
    """fulfillments/create|update: delivered now, or to be remembered for later."""

    order_id: str
    fulfillment_id: str
    fulfillment: dict
    shipment_status: str | None
    delivered_at: object  # datetime when shipment_status is "delivered", else None


@dataclass(frozen=True)
class FulfillmentDelivered:
    """fulfillment_events/create with status "delivered": the items must be looked up."""

    order_id: str
    fulfillment_id: str
    delivered_at: object


def route(meta, payload):
    """What this webhook means: Ignore, Ingest, FulfillmentChanged or FulfillmentDelivered."""
    if not isinstance(payload, dict):
        raise PayloadProblem("the body must be a JSON object", "body")
    topic = meta.topic
    if topic == "orders/fulfilled":
        return order_trigger(meta, payload, only_fulfilled_lines=False)
    if topic == "orders/partially_fulfilled":
        return order_trigger(meta, payload, only_fulfilled_lines=True)
    if topic == "orders/cancelled":
        return order_cancelled(meta, payload)
    if topic == "refunds/create":
        return refund_created(meta, payload)
    if topic in FULFILLMENT_TOPICS:
        return fulfillment_changed(meta, payload)
    if topic == "fulfillment_events/create":
        return fulfillment_event(meta, payload)
    if topic in CONTEXT_TOPICS:
        order_id = _id(_require(payload, "id", "id"), "id")
        return Ignore(
            "no trigger in this topic; the order's details are kept for its later fulfillment events", order_id
        )
    return Ignore(
        f"topic {topic!r} is not used by this app (handled: {', '.join(HANDLED_TOPICS[:7])})",
        loose_order_id(topic, payload),
    )


# -- one builder per meaning --------------------------------------------------------------


def order_trigger(meta, order, *, only_fulfilled_lines):
    """orders/fulfilled: every line item; orders/partially_fulfilled: the shipped ones."""
    order_id = _id(_require(order, "id", "id"), "id")
    if order.get("cancelled_at"):
        return Ignore(f"order {order_id} is cancelled", order_id)
    line_items = _list(order, "line_items")
    refunded = refunded_line_item_ids(order)
    candidates, left_out = [], []
    for i, line in enumerate(line_items):
        line = _object(line, f"line_items[{i}]")
        if only_fulfilled_lines and line.get("fulfillment_status") not in FULFILLED_LINE_STATUSES:
            left_out.append(
                LeftOut(
                    _id(_require(line, "id", f"line_items[{i}].id"), f"line_items[{i}].id"),
                    _loose_id(line.get("product_id")),
                    "not fulfilled yet",
                )
            )
            continue
        candidates.append(line)
    items, more = items_from(candidates, delivered=None, refunded=refunded)
    fulfillments = order.get("fulfillments") if isinstance(order.get("fulfillments"), list) else []
    occurred_at = (
        latest_time(
            [
                (f.get("created_at"), f"fulfillments[{i}].created_at")
                for i, f in enumerate(fulfillments)
                if isinstance(f, dict)
            ]
        )
        or _time(order.get("updated_at"), "updated_at")
        or meta.fallback_time()
    )
    event = _event(meta, "order.fulfilled", order_id, occurred_at, items, order=order)
    return Ingest(event, left_out=tuple(left_out) + more)


def order_cancelled(meta, order):
    order_id = _id(_require(order, "id", "id"), "id")
    occurred_at = (
        _time(order.get("cancelled_at"), "cancelled_at")
        or _time(order.get("updated_at"), "updated_at")
        or meta.fallback_time()
    )
    return Ingest(_event(meta, "order.cancelled", order_id, occurred_at, (), order=order))


def refund_created(meta, refund):
    """Only the refunded line items' requests stop; a full refund lists every item."""
    order_id = _id(_require(refund, "order_id", "order_id"), "order_id")
    refund_id = _id(_require(refund, "id", "id"), "id")
    line_ids = []
    for i, entry in enumerate(_list(refund, "refund_line_items", required=False)):
        entry = _object(entry, f"refund_line_items[{i}]")
        line_ids.append(
            _id(
                _require(entry, "line_item_id", f"refund_line_items[{i}].line_item_id"),
                f"refund_line_items[{i}].line_item_id",
            )
        )
    if not line_ids:
        return Ignore(
            f"refund {refund_id} lists no line items (an amount or shipping refund): nothing to cancel", order_id
        )
    occurred_at = (
        _time(refund.get("created_at"), "created_at")
        or _time(refund.get("processed_at"), "processed_at")
        or meta.fallback_time()
    )
    event = _event(meta, "order.refunded", order_id, occurred_at, ())
    return Ingest(event, cancel_item_ids=tuple(dict.fromkeys(line_ids)))


def fulfillment_changed(meta, fulfillment):
    order_id = _id(_require(fulfillment, "order_id", "order_id"), "order_id")
    fulfillment_id = _id(_require(fulfillment, "id", "id"), "id")
    items_from(_list(fulfillment, "line_items"), delivered=True)  # refuse a malformed one now
    status = fulfillment.get("status")
    if status in BROKEN_FULFILLMENT_STATUSES:
        return Ignore(f"fulfillment {fulfillment_id} is {status}", order_id)
    shipment_status = fulfillment.get("shipment_status")
    delivered_at = None
    if shipment_status == "delivered":
        delivered_at = _time(fulfillment.get("updated_at"), "updated_at") or meta.fallback_time()
    return FulfillmentChanged(order_id, fulfillment_id, fulfillment, shipment_status, delivered_at)


def fulfillment_event(meta, event):
    order_id = _id(_require(event, "order_id", "order_id"), "order_id")
    fulfillment_id = _id(_require(event, "fulfillment_id", "fulfillment_id"), "fulfillment_id")
    status = event.get("status")
    if status != "delivered":
        return Ignore(f"fulfillment event status is {status!r}; only 'delivered' starts requests", order_id)
    delivered_at = (
        _time(event.get("happened_at"), "happened_at")
        or _time(event.get("created_at"), "created_at")
        or meta.fallback_time()
    )
    return FulfillmentDelivered(order_id, fulfillment_id, delivered_at)


def delivered_from_fulfillment(meta, fulfillment, delivered_at, *, order=None, refunded=frozenset()):
    """The delivered trigger for one fulfillment: only its line items (spec §1, step 3)."""
    order_id = _id(_require(fulfillment, "order_id", "order_id"), "order_id")
    refunded = set(refunded) | (refunded_line_item_ids(order) if order else set())
    items, left_out = items_from(_list(fulfillment, "line_items"), delivered=True, refunded=refunded)
    event = _event(meta, "order.delivered", order_id, delivered_at, items, order=order, fulfillment=fulfillment)
    return Ingest(event, left_out=left_out)


def waiting_for_items(meta, delivered, reason):
    """A delivered event whose fulfillment's items we have not seen: recorded, no request yet."""
    event = _event(meta, "order.delivered", delivered.order_id, delivered.delivered_at, ())
    return Ingest(event, left_out=(LeftOut(None, None, reason),), summary=reason)


# -- reading the resources ----------------------------------------------------------------


def items_from(line_items, *, delivered, refunded=frozenset()):
    """Line items → (ItemIn tuple, LeftOut tuple). Products only: custom lines, tips and
    gift cards are not something to film; refunded or removed lines are not kept."""
    items, left_out = [], []
    for i, line in enumerate(line_items):
        path = f"line_items[{i}]"
        line = _object(line, path)
        line_id = _id(_require(line, "id", f"{path}.id"), f"{path}.id")
        product_id = _loose_id(line.get("product_id"))
        if line.get("gift_card") is True:
            left_out.append(LeftOut(line_id, product_id, "gift card"))
        elif product_id is None:
            left_out.append(LeftOut(line_id, None, "custom line item without a product"))
        elif line_id in refunded:
            left_out.append(LeftOut(line_id, product_id, "refunded"))
        elif line.get("current_quantity") == 0:
            left_out.append(LeftOut(line_id, product_id, "removed from the order"))
        else:
            quantity = line.get("quantity")
            items.append(
                ItemIn(
                    id=line_id,
                    product_id=product_id,
                    sku=_text(line.get("sku"), 120),
                    title=_text(line.get("title"), 255) or _text(line.get("name"), 255) or f"Product {product_id}",
                    quantity=quantity
                    if isinstance(quantity, int) and not isinstance(quantity, bool) and quantity > 0
                    else 1,
                    price=_money(line.get("price")),
                    image_url=None,  # not in webhooks; the product API would be a slow call
                    delivered=delivered,
                )
            )
    return tuple(items), tuple(left_out)


def customer_of(order=None, fulfillment=None):
    """The customer, from the order's customer record first, then the order, then the
    addresses (a fulfillment carries an email and its destination address)."""
    order = order if isinstance(order, dict) else {}
    fulfillment = fulfillment if isinstance(fulfillment, dict) else {}
    customer = _dict(order.get("customer"))
    addresses = [
        _dict(order.get("shipping_address")),
        _dict(order.get("billing_address")),
        _dict(fulfillment.get("destination")),
    ]
    emails = [customer.get("email"), order.get("email"), order.get("contact_email"), fulfillment.get("email")]
    phones = [customer.get("phone"), order.get("phone"), *(a.get("phone") for a in addresses)]
    return CustomerIn(
        email=next((e.strip().lower() for e in emails if isinstance(e, str) and _is_email(e.strip())), None),
        phone=best_phone(phones),
        first_name=_first_text([customer.get("first_name"), *(a.get("first_name") for a in addresses)], 120),
        last_name=_first_text([customer.get("last_name"), *(a.get("last_name") for a in addresses)], 120),
    )


def best_phone(candidates):
    """The first phone that is (or becomes, without spaces and dashes) E.164; else the
    first one given, so the intake log can say why SMS is not possible."""
    given = [p.strip() for p in candidates if isinstance(p, str) and p.strip()]
    for phone in given:
        compact = re.sub(r"[\s().\-]", "", phone)
        if E164.match(compact):
            return compact
    return next((p for p in given if len(p) <= 20), None)


def tags_of(order):
    """Order tags and customer tags (both comma-separated strings in Shopify)."""
    order = order if isinstance(order, dict) else {}
    texts = [order.get("tags"), _dict(order.get("customer")).get("tags")]
    tags = []
    for text in texts:
        if isinstance(text, str):
            tags.extend(t.strip().lower() for t in text.split(",") if t.strip())
    return tuple(dict.fromkeys(tags))


def refunded_line_item_ids(order):
    ids = set()
    for refund in _dicts(_dict(order).get("refunds")):
        for entry in _dicts(refund.get("refund_line_items")):
            if entry.get("line_item_id") is not None:
                ids.add(str(entry["line_item_id"]))
    return ids


def fulfillment_in_order(order, fulfillment_id):
    """The fulfillment with this id among an order payload's ``fulfillments``, or None."""
    for fulfillment in _dicts(_dict(order).get("fulfillments")):
        if str(fulfillment.get("id")) == fulfillment_id:
            return {**fulfillment, "order_id": fulfillment.get("order_id") or order.get("id")}
    return None


def loose_order_id(topic, payload):
    """An order id for the intake log of a topic we do not use, when one is obvious."""
    value = payload.get("order_id")
    if value is None and topic.startswith("orders/"):
        value = payload.get("id")
    return _loose_id(value)


def latest_time(values):
    """The latest of (value, path) pairs that are times; None when none is."""
    times = [t for t in (_time(v, path) for v, path in values) if t is not None]
    return max(times) if times else None


def _event(meta, event_type, order_id, occurred_at, items, *, order=None, fulfillment=None):
    order = order if isinstance(order, dict) else {}
    currency = order.get("currency")
    return OrderEventIn(
        event_id=meta.intake_event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        order_id=order_id,
        total=_money(order.get("total_price")),
        currency=currency if isinstance(currency, str) and len(currency) == 3 else None,
        tags=tags_of(order),
        customer=customer_of(order, fulfillment),
        items=tuple(items),
    )


# -- small readers --------------------------------------------------------------------------


def _require(obj, key, path):
    if obj.get(key) is None:
        raise PayloadProblem(f"{path} is required", path)
    return obj[key]


def _object(value, path):
    if not isinstance(value, dict):
        raise PayloadProblem(f"{path} must be an object", path)
    return value


def _list(obj, key, required=True):
    value = obj.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise PayloadProblem(f"{key} must be a list", key)
    return value


def _dict(value):
    return value if isinstance(value, dict) else {}


def _dicts(value):
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _id(value, path):
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise PayloadProblem(f"{path} must be a number or a string", path)
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise PayloadProblem(f"{path} must be at most {MAX_ID_LENGTH} characters", path)
    return text


def _loose_id(value):
    try:
        return _id(value, "id")
    except PayloadProblem:
        return None


def _text(value, max_length):
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:max_length]


def _first_text(values, max_length):
    return next((t for t in (_text(v, max_length) for v in values) if t), None)


def _is_email(text):
    return len(text) <= 254 and EMAIL.match(text) is not None


def _money(value):
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _time(value, path):
    """A time field: None when it is missing or not a time (Shopify leaves some empty),
    a PayloadProblem naming ``path`` when it lies outside 1970–9000 (year 1 with an offset
    does not even convert to UTC)."""
    try:
        return supported_time(value, path)
    except ValueError as exc:
        if isinstance(exc, PayloadProblem):
            raise
        return None


def supported_time(value, name):
    """``value`` parsed (ValueError if it is not a time), or PayloadProblem naming
    ``name`` when it lies outside the years the app supports."""
    try:
        parsed = parse_rfc3339(value)
    except OverflowError:
        parsed = None
    if parsed is None or not EARLIEST_SUPPORTED <= parsed < LATEST_SUPPORTED:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise PayloadProblem(
            f"{name} {shown!r} is outside the supported years {EARLIEST_SUPPORTED:%Y}–{LATEST_SUPPORTED:%Y}", name
        )
    return parsed
