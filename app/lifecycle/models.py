"""Testimonial requests, their event stream and their per-slot sends."""

import dataclasses

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import isoformat, utcnow
from app.dbtypes import UTCDateTime
from app.extensions import db
from app.providers.base import UNKNOWN, Failure


class TestimonialRequest(db.Model):
    """One request per order × product (a product is asked about once per order).

    ``status`` only ever changes through ``app.lifecycle.states.transition``.
    """

    __tablename__ = "testimonial_requests"
    __test__ = False  # not a pytest test class

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    order_event_id: Mapped[int | None] = mapped_column(ForeignKey("order_events.id"))
    order_id: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(String(120))
    product_title: Mapped[str] = mapped_column(String(255))
    product_image_url: Mapped[str | None] = mapped_column(String(1000))
    customer_email: Mapped[str | None] = mapped_column(String(254), index=True)
    customer_phone: Mapped[str | None] = mapped_column(String(20), index=True)
    customer_first_name: Mapped[str | None] = mapped_column(String(120))
    customer_last_name: Mapped[str | None] = mapped_column(String(120))
    # The channels this request uses: email | sms | both (what the campaign wants and
    # the customer's contact details allow).
    channel: Mapped[str] = mapped_column(String(5))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    # No default: every writer names the status it starts in (intake: states.SCHEDULED).
    status: Mapped[str] = mapped_column(String(10), index=True)

    trigger_at = mapped_column(UTCDateTime, nullable=False)  # the order event's occurred_at
    next_send_at = mapped_column(UTCDateTime)  # None: nothing more to send
    next_slot: Mapped[int] = mapped_column(default=0)  # 0 = initial, k = reminder k
    reminder_count: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)  # attempts of the current slot
    resend_count: Mapped[int] = mapped_column(default=0)  # explicit resends asked by a person
    # Claim lease: set while one dispatcher owns the request's current slot.
    claimed_at = mapped_column(UTCDateTime)
    claim_id: Mapped[str | None] = mapped_column(String(32))

    sent_at = mapped_column(UTCDateTime)  # first accepted send
    last_sent_at = mapped_column(UTCDateTime)
    clicked_at = mapped_column(UTCDateTime)
    submitted_at = mapped_column(UTCDateTime)
    expires_at = mapped_column(UTCDateTime)
    cancelled_at = mapped_column(UTCDateTime)
    postponed_at = mapped_column(UTCDateTime)  # the customer said "not arrived yet" (once)
    # Each channel's standing failure: the ``failed`` event that records it (kept by
    # ``states.refresh_failures``; None: that channel has no failure standing). A plain
    # id, no foreign key: the two tables would point at each other.
    email_failure_id: Mapped[int | None] = mapped_column()
    sms_failure_id: Mapped[int | None] = mapped_column()
    last_event_at = mapped_column(UTCDateTime)
    email_message_id: Mapped[str | None] = mapped_column(String(255))
    sms_message_id: Mapped[str | None] = mapped_column(String(255))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    campaign = relationship("Campaign")
    events = relationship("TestimonialRequestEvent", order_by="TestimonialRequestEvent.id", back_populates="request")
    # What the customer submitted (app.testimonials, which builds on requests: named, not imported).
    testimonial = relationship("Testimonial", uselist=False, viewonly=True)
    email_failure_event = relationship(
        "TestimonialRequestEvent",
        primaryjoin="foreign(TestimonialRequest.email_failure_id) == TestimonialRequestEvent.id",
        viewonly=True,
    )
    sms_failure_event = relationship(
        "TestimonialRequestEvent",
        primaryjoin="foreign(TestimonialRequest.sms_failure_id) == TestimonialRequestEvent.id",
        viewonly=True,
    )

    __table_args__ = (
        # The guarantee behind "never a second request": replays, new event ids for the
        # same order and racing deliveries all meet this constraint.
        UniqueConstraint("order_id", "product_id", name="uq_request_order_product"),
        Index("ix_requests_due", "next_send_at", "status"),
        Index("ix_requests_created", "created_at"),
        # Requests Log: status (+ campaign) filters and their counts (migration 0003).
        Index("ix_requests_status_campaign", "status", "campaign_id"),
    )

    @property
    def channels(self):
        return ("email", "sms") if self.channel == "both" else (self.channel,)

    @property
    def has_failure(self):
        return self.email_failure_id is not None or self.sms_failure_id is not None

    @property
    def failures(self):
        """Each channel's standing failure (email first), as ``Failure`` data."""
        events = (self.email_failure_event, self.sms_failure_event) if self.has_failure else ()
        return [e.failure for e in events if e is not None]

    @property
    def last_error(self):
        """The standing failures as one technical line (``email: permanent [550]: … · sms: …``),
        or None: what the CLI, the JSON and the CSV export show."""
        return describe_failures(self.failures)

    def to_dict(self, link=None):
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "order_id": self.order_id,
            "item_id": self.item_id,
            "product_id": self.product_id,
            "sku": self.sku,
            "product_title": self.product_title,
            "customer_email": self.customer_email,
            "customer_phone": self.customer_phone,
            "channel": self.channel,
            "status": self.status,
            "reminder_count": self.reminder_count,
            "next_slot": self.next_slot if self.next_send_at else None,
            "next_send_at": isoformat(self.next_send_at),
            "sent_at": isoformat(self.sent_at),
            "clicked_at": isoformat(self.clicked_at),
            "submitted_at": isoformat(self.submitted_at),
            "expires_at": isoformat(self.expires_at),
            "cancelled_at": isoformat(self.cancelled_at),
            "created_at": isoformat(self.created_at),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "failures": [dataclasses.asdict(f) for f in self.failures],
            "email_message_id": self.email_message_id,
            "sms_message_id": self.sms_message_id,
            "link": link,
        }


class TestimonialRequestEvent(db.Model):
    """The request's event stream (spec §4 plus submitted, expired, cancelled)."""

    __tablename__ = "testimonial_request_events"
    __test__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("testimonial_requests.id"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(5))
    slot: Mapped[int | None] = mapped_column()
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    occurred_at = mapped_column(UTCDateTime, nullable=False)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Set for events reported by providers: their event id, or (type, message id, window).
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # A ``failed`` event is a failure as data: channel, provider, error_code, detail (the
    # provider's message) and these two.
    retryable: Mapped[bool | None] = mapped_column()
    error_kind: Mapped[str | None] = mapped_column(String(20))

    request = relationship(TestimonialRequest, back_populates="events")

    @property
    def failure(self):
        """A ``failed`` event's failure as data (None for other events and request summaries)."""
        if self.type != "failed" or self.channel is None:
            return None
        return Failure(
            channel=self.channel,
            provider=self.provider,
            code=self.error_code,
            retryable=bool(self.retryable),
            message=self.detail or "",
            kind=self.error_kind or UNKNOWN,
            reported=self.dedupe_key is not None,
        )

    def to_dict(self):
        return {
            "id": self.id,
            "type": self.type,
            "channel": self.channel,
            "slot": self.slot,
            "occurred_at": isoformat(self.occurred_at),
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "error_code": self.error_code,
            "detail": self.detail,
            "retryable": self.retryable,
            "error_kind": self.error_kind,
        }


class SlotSend(db.Model):
    """One row per (request, slot, channel, resend): the at-most-once marker.

    The row is written (status ``sending``) and committed before the provider is
    called, so a slot that was handed to a provider is never handed over again unless a
    person asks for it (a retry of a failed row, or an explicit resend).
    """

    __tablename__ = "slot_sends"

    # A slot send's own statuses (not the request's, though two words are the same):
    # handed to the provider and waiting for its answer, accepted, refused.
    SENDING, SENT, FAILED = "sending", "sent", "failed"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("testimonial_requests.id"), index=True)
    slot: Mapped[int] = mapped_column()
    channel: Mapped[str] = mapped_column(String(5))
    resend: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(10))  # SENDING | SENT | FAILED
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(default=0)
    # The last attempt's failure as data: the provider's message, its code, its kind
    # (app.providers.base) and ``retryable``: False when the provider said trying again
    # cannot help (the dispatcher's own retries skip this channel, a person's Retry does not).
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_kind: Mapped[str | None] = mapped_column(String(20))
    retryable: Mapped[bool] = mapped_column(default=True)
    started_at = mapped_column(UTCDateTime, nullable=False)
    finished_at = mapped_column(UTCDateTime)
    due_at = mapped_column(UTCDateTime)  # when the slot was due (for due-send latency)

    __table_args__ = (
        UniqueConstraint("request_id", "slot", "channel", "resend", name="uq_slot_send"),
        Index("ix_slot_sends_finished", "finished_at"),
    )

    @property
    def failure(self):
        """The failed attempt as data (None unless the row failed)."""
        if self.status != self.FAILED:
            return None
        return Failure(
            channel=self.channel,
            provider=self.provider,
            code=self.error_code,
            retryable=self.retryable,
            message=self.error or "",
            kind=self.error_kind or UNKNOWN,
        )


def describe_failures(failures):
    """[Failure] → ``"email: permanent [550]: … · sms: …"``, or None when all is well."""
    return " · ".join(f"{f.channel}: {f.summary()}" for f in failures) or None
