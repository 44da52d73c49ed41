"""Step 2: is this order item eligible for this campaign? Pure functions, no database.

Each answer carries the reason a merchant reads in the intake log when an item was skipped.
"""

from dataclasses import dataclass
from decimal import Decimal

from app.clock import isoformat
from app.optouts.models import E164


@dataclass(frozen=True)
class CampaignRules:
    id: int
    trigger: str
    channel: str
    include_products: tuple = ()
    exclude_products: tuple = ()
    min_order_total: Decimal | None = None
    exclude_tags: tuple = ()

    @classmethod
    def of(cls, campaign):
        return cls(
            id=campaign.id,
            trigger=campaign.trigger,
            channel=campaign.channel,
            include_products=tuple(campaign.include_products or ()),
            exclude_products=tuple(campaign.exclude_products or ()),
            min_order_total=campaign.min_order_total,
            exclude_tags=tuple(t.lower() for t in campaign.exclude_tags or ()),
        )


@dataclass(frozen=True)
class Verdict:
    eligible: bool
    reason: str | None = None
    channel: str | None = None  # email | sms | both: what the request will use


def skip(reason):
    return Verdict(False, reason)


def usable_channels(wanted, email, phone, opted_out):
    """The channels among ``wanted`` that this customer can be reached on, and why not."""
    wanted = ("email", "sms") if wanted == "both" else (wanted,)
    usable, missing = [], []
    for channel in wanted:
        if channel == "email":
            if not email:
                missing.append("no email address")
                continue
        elif not phone:
            missing.append("no phone number")
            continue
        elif not E164.match(phone):
            missing.append(f"phone {phone!r} is not in E.164 format (e.g. +15551234567)")
            continue
        if channel in opted_out:
            missing.append(f"opted out of {'email' if channel == 'email' else 'SMS'}")
            continue
        usable.append(channel)
    return usable, missing


def evaluate_item(rules, order, item, *, opted_out=frozenset(), already_asked=False):
    """Verdict for one item of an order event against one campaign's rules."""
    if rules.trigger == "delivered" and item.delivered is False:
        return skip("item not delivered yet")
    product_keys = {item.product_id, item.sku} - {None}
    if rules.include_products and not product_keys & set(rules.include_products):
        return skip("product not in the campaign's include list")
    if rules.exclude_products and product_keys & set(rules.exclude_products):
        return skip("product excluded by the campaign")
    if rules.min_order_total is not None:
        if order.total is None:
            return skip(f"order total unknown; the campaign needs at least {rules.min_order_total}")
        if order.total < rules.min_order_total:
            return skip(f"order total {order.total} below the minimum {rules.min_order_total}")
    excluded = sorted(set(order.tags) & set(rules.exclude_tags))
    if excluded:
        return skip(f"customer tag {', '.join(excluded)} is excluded")
    channels, missing = usable_channels(rules.channel, order.customer.email, order.customer.phone, opted_out)
    if not channels:
        reasons = "; ".join(missing)
        return skip("opted out" if all(m.startswith("opted out") for m in missing) else f"no usable contact: {reasons}")
    if already_asked:
        return skip("customer already asked about this product by this campaign")
    return Verdict(True, channel="both" if len(channels) == 2 else channels[0])


@dataclass(frozen=True)
class Cancellation:
    """The latest cancellation or refund remembered for an order (``item_id`` None) or
    for one of its items (a line item id or a product id)."""

    item_id: str | None
    kind: str  # cancelled | refunded
    at: object  # the cancelling event's occurred_at (aware UTC)


def cancelled_by(occurred_at, item, cancellations):
    """The cancellation that stops this delivered item, or None.

    Events count in the order they happened, not the order they arrived: a cancellation
    stops the deliveries that happened at or before it, even when its webhook came first
    (or its transaction committed last). A delivery that happened later stands.
    """
    keys = {None, item.id, item.product_id}
    blocking = [c for c in cancellations if c.item_id in keys and occurred_at <= c.at]
    return max(blocking, key=lambda c: (c.item_id is None, c.at)) if blocking else None


def cancellation_reason(cancellation):
    """The intake log's words for an item skipped because of ``cancellation``."""
    what = "order" if cancellation.item_id is None else "item"
    return f"{what} {cancellation.kind} at {isoformat(cancellation.at)}"
