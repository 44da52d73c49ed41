"""Validation of the generic order webhook body into a plain ``OrderEventIn``.

Every problem is reported with the path of the offending field, e.g.
``order.items[0].id``, so an integrator can fix their payload without guessing.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from app.clock import parse_rfc3339
from app.optouts.models import EMAIL

EVENT_TYPES = ("order.delivered", "order.fulfilled", "order.cancelled", "order.refunded")
MAX_ID_LENGTH = 64
MAX_ITEMS = 500
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT = datetime(2100, 1, 1, tzinfo=UTC)
# What any stored time (a platform's timestamps, a computed send time) may be: past the
# end, adding a delay overflows Python's datetime; before 1970, it is a placeholder.
EARLIEST_SUPPORTED = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_SUPPORTED = datetime(9000, 1, 1, tzinfo=UTC)


class SchemaError(ValueError):
    def __init__(self, message, field):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ItemIn:
    id: str
    product_id: str
    sku: str | None
    title: str
    quantity: int
    price: Decimal | None
    image_url: str | None
    delivered: bool | None


@dataclass(frozen=True)
class CustomerIn:
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None


@dataclass(frozen=True)
class OrderEventIn:
    event_id: str
    event_type: str
    occurred_at: object
    order_id: str
    total: Decimal | None
    currency: str | None
    tags: tuple
    customer: CustomerIn
    items: tuple

    @property
    def trigger(self):
        return self.event_type.split(".", 1)[1]


def _require(obj, key, path):
    if key not in obj or obj[key] is None:
        raise SchemaError(f"{path} is required", path)
    return obj[key]


def _shown(value, limit=80):
    """A sender's value quoted in an error, cut short: the answer never echoes a huge body."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _object(value, path):
    if not isinstance(value, dict):
        raise SchemaError(f"{path} must be an object", path)
    return value


def _identifier(value, path):
    # bool is an int in Python; an id of true is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SchemaError(f"{path} must be a string or an integer", path)
    text = str(value).strip()
    if not text:
        raise SchemaError(f"{path} must not be empty", path)
    if len(text) > MAX_ID_LENGTH:
        raise SchemaError(f"{path} must be at most {MAX_ID_LENGTH} characters", path)
    return text


def _optional_text(obj, key, path, max_length=255):
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError(f"{path} must be a string", path)
    value = value.strip()
    if len(value) > max_length:
        raise SchemaError(f"{path} must be at most {max_length} characters", path)
    return value or None


# No shop's order or item costs this much: a larger number is a unit or encoding mistake.
MAX_AMOUNT = Decimal(10) ** 12


def _money(value, path):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SchemaError(f'{path} must be a decimal number such as "59.90"', path)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise SchemaError(f'{path} must be a decimal number such as "59.90"', path) from None
    if not amount.is_finite() or amount < 0:
        raise SchemaError(f"{path} must be a non-negative amount", path)
    if amount >= MAX_AMOUNT:
        raise SchemaError(f"{path} must be less than {MAX_AMOUNT:,} (got {_shown(value)})", path)
    return amount


def parse_order_event(body):
    """Validate a decoded JSON body; returns OrderEventIn or raises SchemaError."""
    body = _object(body, "body")
    event_id = _identifier(_require(body, "event_id", "event_id"), "event_id")
    event_type = _require(body, "event_type", "event_type")
    if event_type not in EVENT_TYPES:
        raise SchemaError(
            f"event_type {_shown(event_type)} is not supported; allowed: {', '.join(EVENT_TYPES)}", "event_type"
        )
    occurred_text = _require(body, "occurred_at", "occurred_at")
    try:
        occurred_at = parse_rfc3339(occurred_text)
    except (ValueError, OverflowError) as exc:  # year 1 with an offset overflows in UTC
        raise SchemaError(f"occurred_at {exc}", "occurred_at") from None
    # Far-off years are a sender's bug, and adding delay days to year 9999 overflows.
    if not EARLIEST_EVENT <= occurred_at < LATEST_EVENT:
        raise SchemaError(f"occurred_at must lie between {EARLIEST_EVENT:%Y} and {LATEST_EVENT:%Y}", "occurred_at")
    order = _object(_require(body, "order", "order"), "order")
    order_id = _identifier(_require(order, "id", "order.id"), "order.id")
    total = _money(order.get("total"), "order.total")
    currency = _optional_text(order, "currency", "order.currency", 3)
    if currency is not None:
        if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
            raise SchemaError(
                f'order.currency must be a three-letter ISO 4217 code such as "USD" (got {_shown(currency)})',
                "order.currency",
            )
        currency = currency.upper()
    tags = order.get("tags")
    tags = [] if tags is None else tags
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SchemaError("order.tags must be a list of strings", "order.tags")

    customer_raw = order.get("customer")
    customer_raw = {} if customer_raw is None else _object(customer_raw, "order.customer")
    email = _optional_text(customer_raw, "email", "order.customer.email", 254)
    if email and not EMAIL.match(email):
        raise SchemaError(f"order.customer.email {email!r} is not an email address", "order.customer.email")
    phone = _optional_text(customer_raw, "phone", "order.customer.phone", 20)
    customer = CustomerIn(
        email=email.lower() if email else None,
        # A phone not in E.164 is kept out (SMS needs it); eligibility says why.
        phone=phone,
        first_name=_optional_text(customer_raw, "first_name", "order.customer.first_name", 120),
        last_name=_optional_text(customer_raw, "last_name", "order.customer.last_name", 120),
    )

    raw_items = order.get("items")
    needs_items = event_type in ("order.delivered", "order.fulfilled")
    if raw_items is None:
        if needs_items:
            raise SchemaError(f"order.items is required for {event_type}", "order.items")
        raw_items = []
    if not isinstance(raw_items, list):
        raise SchemaError("order.items must be a list", "order.items")
    if needs_items and not raw_items:
        raise SchemaError("order.items must list at least one item", "order.items")
    if len(raw_items) > MAX_ITEMS:
        raise SchemaError(f"order.items may hold at most {MAX_ITEMS} items", "order.items")
    items = tuple(_item(raw, f"order.items[{i}]") for i, raw in enumerate(raw_items))
    seen = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise SchemaError(f"order.items[{i}].id {item.id!r} appears twice", f"order.items[{i}].id")
        seen.add(item.id)
    return OrderEventIn(
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        order_id=order_id,
        total=total,
        currency=currency,
        tags=tuple(t.strip().lower() for t in tags),
        customer=customer,
        items=items,
    )


def _item(raw, path):
    raw = _object(raw, path)
    item_id = _identifier(_require(raw, "id", f"{path}.id"), f"{path}.id")
    product_id = _identifier(_require(raw, "product_id", f"{path}.product_id"), f"{path}.product_id")
    title = _optional_text(raw, "title", f"{path}.title") or f"Product {product_id}"
    quantity = raw.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise SchemaError(f"{path}.quantity must be a positive integer", f"{path}.quantity")
    delivered = raw.get("delivered")
    if delivered is not None and not isinstance(delivered, bool):
        raise SchemaError(f"{path}.delivered must be true or false", f"{path}.delivered")
    image_url = _optional_text(raw, "image_url", f"{path}.image_url", 1000)
    if image_url and not image_url.startswith(("https://", "http://")):
        raise SchemaError(f"{path}.image_url must be an http(s) address", f"{path}.image_url")
    return ItemIn(
        id=item_id,
        product_id=product_id,
        sku=_optional_text(raw, "sku", f"{path}.sku", 120),
        title=title,
        quantity=quantity,
        price=_money(raw.get("price"), f"{path}.price"),
        image_url=image_url,
        delivered=delivered,
    )
