"""Every order webhook we received, with what became of each of its items."""

import json

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import isoformat
from app.dbtypes import UTCDateTime
from app.extensions import db

# The stored body of an erased customer's order (app.erasure), and of one refused because
# the customer was erased.
ERASED_PAYLOAD = json.dumps({"erased": "the customer's data was erased on request"})


class OrderEvent(db.Model):
    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20), default="generic")  # generic | shopify
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at = mapped_column(UTCDateTime, nullable=False)
    received_at = mapped_column(UTCDateTime, nullable=False, index=True)
    processed_at = mapped_column(UTCDateTime)
    processing_ms: Mapped[float | None] = mapped_column()
    summary: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    # Where a platform webhook came from (Shopify: X-Shopify-Topic, X-Shopify-Event-Id,
    # X-Shopify-Shop-Domain). event_id holds the per-delivery id we de-duplicate on.
    topic: Mapped[str | None] = mapped_column(String(60))
    source_event_id: Mapped[str | None] = mapped_column(String(255), index=True)
    shop_domain: Mapped[str | None] = mapped_column(String(255))

    items = relationship("OrderEventItem", order_by="OrderEventItem.id", back_populates="order_event")

    def outcome(self):
        return {
            "created": [i.request_id for i in self.items if i.outcome == "created"],
            "skipped": [
                # campaign_id: which campaign skipped it (an item one campaign skips
                # may still be created by another); None when no campaign was asked.
                {"item_id": i.item_id, "product_id": i.product_id, "campaign_id": i.campaign_id, "reason": i.reason}
                for i in self.items
                if i.outcome == "skipped"
            ],
            "cancelled": [i.request_id for i in self.items if i.outcome == "cancelled"],
        }

    def to_dict(self):
        return {
            "id": self.id,
            "source": self.source,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "order_id": self.order_id,
            "occurred_at": isoformat(self.occurred_at),
            "received_at": isoformat(self.received_at),
            "summary": self.summary,
            "topic": self.topic,
            "source_event_id": self.source_event_id,
            "shop_domain": self.shop_domain,
            **self.outcome(),
        }


class OrderEventItem(db.Model):
    """Outcome per item: created, skipped (and why) or cancelled."""

    __tablename__ = "order_event_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_event_id: Mapped[int] = mapped_column(ForeignKey("order_events.id"), index=True)
    item_id: Mapped[str | None] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    outcome: Mapped[str] = mapped_column(String(10))  # created | skipped | cancelled
    reason: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("testimonial_requests.id"))

    order_event = relationship(OrderEvent, back_populates="items")


class OrderCancellation(db.Model):
    """An order (``item_id`` NULL) or some of its items cancelled or refunded, remembered
    with the cancelling event's ``occurred_at``: a delivery event of the same source and
    order that happened no later creates nothing for them, whatever order the two
    webhooks arrive or commit in (``app.intake.eligibility.cancelled_by``)."""

    __tablename__ = "order_cancellations"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(String(64))
    # A line item id or product id (a refund names either); NULL: the whole order.
    item_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))  # cancelled | refunded
    cancelled_at = mapped_column(UTCDateTime, nullable=False)
    order_event_id: Mapped[int] = mapped_column(ForeignKey("order_events.id"))

    __table_args__ = (Index("ix_order_cancellations_source_order", "source", "order_id"),)
