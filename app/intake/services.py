"""Steps 1–4: an order event becomes per-product testimonial requests (or cancels them).

``ingest_order_event`` is the one intake path: the generic webhook and the Shopify
webhook both end here, so one set of rules decides.
"""

import hashlib
import json
import logging
import secrets
import time

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError

from app.campaigns.models import Campaign
from app.clock import as_utc, isoformat
from app.extensions import db
from app.intake.eligibility import CampaignRules, Cancellation, cancellation_reason, cancelled_by, evaluate_item
from app.intake.models import OrderCancellation, OrderEvent, OrderEventItem
from app.lifecycle import policy
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import cancel_request
from app.lifecycle.states import SUBMITTED, TERMINAL
from app.optouts.models import opted_out_channels

log = logging.getLogger("app.intake")


def new_token():
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


class EventIdReused(ValueError):
    """A generic webhook's ``event_id`` was first received for another order or event type:
    a sender's bug (a fixed or recycled id), not a replay. Nothing is written."""

    def __init__(self, event, existing):
        super().__init__(
            f"event_id {event.event_id!r} was already used by a different event ({existing.event_type} for order "
            f"{existing.order_id}, received {existing.received_at:%Y-%m-%dT%H:%M:%SZ}); this one is {event.event_type} "
            f"for order {event.order_id}. Give each event its own event_id; resend an event only with the id it was "
            "first sent with"
        )
        self.message = str(self)


def ingest_with_retry(event, raw_payload, now, *, source="generic", cancel_item_ids=None, on_recorded=None):
    """Ingest and commit. A unique-constraint race (a concurrent delivery of the same event
    or order) is rolled back and evaluated again: the second pass sees the winner's rows.

    ``on_recorded(record)`` runs on a new (not duplicate) event inside the same transaction:
    a source adds what only it knows (Shopify: topic, shop, line items it left out)."""
    for attempt in range(3):
        try:
            record, duplicate = ingest_order_event(
                event, raw_payload, now, source=source, cancel_item_ids=cancel_item_ids
            )
            if on_recorded is not None and not duplicate:
                on_recorded(record)
                db.session.flush()
            db.session.commit()
            return record, duplicate
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
            log.info("intake race on event %s, evaluating again", event.event_id)


def ingest_order_event(event, raw_payload, now, *, source="generic", cancel_item_ids=None):
    """Record the event and act on it. Returns (OrderEvent, duplicate). Flushes only."""
    started = time.perf_counter()
    lock_order(source, event.order_id)
    existing = db.session.scalar(select(OrderEvent).where(OrderEvent.event_id == event.event_id))
    if existing is not None:
        if source == "generic" and (existing.source, existing.order_id, existing.event_type) != (
                source, event.order_id, event.event_type):
            log.warning("step=1 event %s refused: its id was first used for %s of order %s, now %s of order %s",
                        event.event_id, existing.event_type, existing.order_id, event.event_type, event.order_id)
            raise EventIdReused(event, existing)
        log.info("step=1 duplicate event %s for order %s ignored", event.event_id, event.order_id)
        return existing, True
    record = OrderEvent(
        source=source,
        event_id=event.event_id,
        event_type=event.event_type,
        order_id=event.order_id,
        occurred_at=event.occurred_at,
        received_at=now,
        payload=raw_payload if isinstance(raw_payload, str) else json.dumps(raw_payload),
    )
    db.session.add(record)
    db.session.flush()
    if event.event_type in CANCELLING:
        _cancel_order(record, event, now, cancel_item_ids, source)
    else:
        _create_requests(record, event, now, order_cancellations(source, event.order_id))
    record.processed_at = now
    record.processing_ms = round((time.perf_counter() - started) * 1000, 2)
    db.session.flush()
    # Logged once the event is processed, so the line names the requests it made or stopped.
    acted = db.session.execute(
        select(OrderEventItem.request_id, OrderEventItem.campaign_id).where(
            OrderEventItem.order_event_id == record.id, OrderEventItem.outcome.in_(("created", "cancelled"))
        )
    ).all()
    log.info("step=1 order event %s (%s) for order %s received: %s; request=%s campaign=%s",
             event.event_id, event.event_type, event.order_id, record.summary,
             ",".join(str(r) for r, _ in acted) or "-", ",".join(sorted({str(c) for _, c in acted})) or "-")
    return record, False


def _outcome(record, item, outcome, reason=None, campaign_id=None, request_id=None):
    db.session.add(
        OrderEventItem(
            order_event_id=record.id,
            item_id=item.id if item else None,
            product_id=item.product_id if item else None,
            campaign_id=campaign_id,
            outcome=outcome,
            reason=reason,
            request_id=request_id,
        )
    )


CANCELLING = {"order.cancelled": "cancelled", "order.refunded": "refunded"}


def lock_order(source, order_id):
    """Serialise the events of one order until the transaction ends (PostgreSQL).

    A cancellation and a delivery of the same order in two concurrent transactions
    would each miss the other's uncommitted rows: the cancellation finds no request to
    stop, the delivery no cancellation. SQLite needs nothing: every transaction there
    takes the write lock when it begins (app/database.py).
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.blake2b(f"order:{source}:{order_id}".encode(), digest_size=8).digest(),
                         "big", signed=True)
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def order_cancellations(source, order_id):
    """What is remembered as cancelled or refunded for this order: one statement."""
    rows = db.session.execute(
        select(OrderCancellation.item_id, OrderCancellation.kind, func.max(OrderCancellation.cancelled_at))
        .where(OrderCancellation.source == source, OrderCancellation.order_id == order_id)
        .group_by(OrderCancellation.item_id, OrderCancellation.kind)
    ).all()
    return tuple(Cancellation(item_id, kind, as_utc(at)) for item_id, kind, at in rows)


def _create_requests(record, event, now, cancellations=()):
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.status == "active", Campaign.trigger == event.trigger)
        .order_by(Campaign.created_at, Campaign.id)  # the oldest campaign wins
    ).all()
    opted_out = opted_out_channels(event.customer.email, event.customer.phone)
    items_of_product = {}
    for item in event.items:
        items_of_product.setdefault(item.product_id, []).append(item.id)
    first_item_of_product = {}
    created, skipped = 0, 0
    for item in event.items:
        cancellation = cancelled_by(event.occurred_at, item, cancellations)
        if cancellation is not None:
            _outcome(record, item, "skipped", cancellation_reason(cancellation))
            log.info("step=2 skipped order=%s item=%s: %s", event.order_id, item.id, cancellation_reason(cancellation))
            skipped += 1
            continue
        # Step 3: one request per product; quantity and repeated lines do not multiply.
        if item.product_id in first_item_of_product:
            _outcome(record, item, "skipped",
                     f"same product as item {first_item_of_product[item.product_id]} (one request per product)")
            skipped += 1
            continue
        first_item_of_product[item.product_id] = item.id
        if not campaigns:
            _outcome(record, item, "skipped", f"no active campaign with trigger '{event.trigger}'")
            skipped += 1
            continue
        earlier = db.session.scalar(
            select(TestimonialRequest).where(
                TestimonialRequest.order_id == event.order_id,
                TestimonialRequest.product_id == item.product_id,
            )
        )
        if earlier is not None:
            _outcome(record, item, "skipped", f"already requested by campaign {earlier.campaign_id} "
                     f"(request {earlier.id})", campaign_id=earlier.campaign_id, request_id=earlier.id)
            skipped += 1
            continue
        winner = None
        for campaign in campaigns:
            if winner is not None:
                _outcome(record, item, "skipped", f"already requested by campaign {winner.campaign_id}",
                         campaign_id=campaign.id)
                continue
            verdict = evaluate_item(
                CampaignRules.of(campaign), event, item,
                opted_out=opted_out,
                already_asked=_already_asked(campaign.id, event, item),
            )
            if not verdict.eligible:
                _outcome(record, item, "skipped", verdict.reason, campaign_id=campaign.id)
                log.info("step=2 skipped order=%s item=%s campaign=%s: %s",
                         event.order_id, item.id, campaign.id, verdict.reason)
                continue
            winner = _new_request(record, event, item, campaign, verdict.channel, now)
            _outcome(record, item, "created", campaign_id=campaign.id, request_id=winner.id)
            log.info("step=2 eligible request=%s campaign=%s order=%s item=%s channel=%s",
                     winner.id, campaign.id, event.order_id, item.id, verdict.channel)
            log.info("step=3 split request=%s campaign=%s order=%s product=%s from items %s",
                     winner.id, campaign.id, event.order_id, item.product_id,
                     ", ".join(items_of_product[item.product_id]))
            log.info("step=4 created request=%s campaign=%s order=%s product=%s due=%s", winner.id, campaign.id,
                     event.order_id, item.product_id, winner.next_send_at.isoformat())
        if winner:
            created += 1
        else:
            skipped += 1
    record.summary = f"{created} created, {skipped} skipped"


def _already_asked(campaign_id, event, item):
    contact = []
    if event.customer.email:
        contact.append(TestimonialRequest.customer_email == event.customer.email)
    if event.customer.phone:
        contact.append(TestimonialRequest.customer_phone == event.customer.phone)
    if not contact:
        return False
    return db.session.scalar(
        select(TestimonialRequest.id).where(
            TestimonialRequest.campaign_id == campaign_id,
            TestimonialRequest.product_id == item.product_id,
            TestimonialRequest.order_id != event.order_id,
            or_(*contact),
        ).limit(1)
    ) is not None


def _new_request(record, event, item, campaign, channel, now):
    due = policy.initial_due_at(event.occurred_at, campaign.delay_days)
    customer = event.customer
    req = TestimonialRequest(
        campaign_id=campaign.id,
        order_event_id=record.id,
        order_id=event.order_id,
        item_id=item.id,
        product_id=item.product_id,
        sku=item.sku,
        product_title=item.title,
        product_image_url=item.image_url,
        customer_email=customer.email,
        customer_phone=customer.phone,
        customer_first_name=customer.first_name,
        customer_last_name=customer.last_name,
        channel=channel,
        token=new_token(),
        status="scheduled",
        trigger_at=event.occurred_at,
        # A send time already past is due at the next tick.
        next_send_at=max(due, now),
        next_slot=0,
        created_at=now,
        updated_at=now,
    )
    db.session.add(req)
    db.session.flush()
    return req


def _cancel_order(record, event, now, cancel_item_ids, source):
    """order.cancelled / order.refunded: remember it, and stop the order's requests not
    yet submitted whose delivery happened no later than the cancellation.

    With ``cancel_item_ids`` (a partial refund) only those items' requests stop.
    """
    kind = CANCELLING[event.event_type]
    db.session.add_all(
        OrderCancellation(source=source, order_id=event.order_id, item_id=item_id, kind=kind,
                          cancelled_at=event.occurred_at, order_event_id=record.id)
        for item_id in (dict.fromkeys(cancel_item_ids) if cancel_item_ids is not None else (None,))
    )
    query = select(TestimonialRequest).where(TestimonialRequest.order_id == event.order_id)
    requests = db.session.scalars(query.order_by(TestimonialRequest.id)).all()
    order_has_requests = bool(requests)
    if cancel_item_ids is not None:
        wanted = set(cancel_item_ids)
        requests = [r for r in requests if r.item_id in wanted or r.product_id in wanted]
    reason = f"order {event.trigger}"
    cancelled = 0
    for req in requests:
        if as_utc(req.trigger_at) > event.occurred_at:
            db.session.add(OrderEventItem(
                order_event_id=record.id, item_id=req.item_id, product_id=req.product_id,
                campaign_id=req.campaign_id, outcome="skipped", request_id=req.id,
                reason=f"not cancelled: delivered at {isoformat(req.trigger_at)}, after this {kind} "
                       f"at {isoformat(event.occurred_at)}"))
            continue
        if req.status in TERMINAL:
            why = "already submitted" if req.status == SUBMITTED else f"already {req.status}"
            db.session.add(OrderEventItem(order_event_id=record.id, item_id=req.item_id, product_id=req.product_id,
                                          campaign_id=req.campaign_id, outcome="skipped",
                                          reason=f"not cancelled: {why}", request_id=req.id))
            continue
        if cancel_request(req, now, f"{reason} (event {event.event_id})"):
            cancelled += 1
            db.session.add(OrderEventItem(order_event_id=record.id, item_id=req.item_id, product_id=req.product_id,
                                          campaign_id=req.campaign_id, outcome="cancelled",
                                          reason=reason, request_id=req.id))
    if not requests and order_has_requests:
        # A partial refund of items we never asked about: say so, not "no requests".
        _outcome(record, None, "skipped", f"no requests for the refunded items ({', '.join(cancel_item_ids)}); "
                                          "the order's other requests go on")
    elif not requests:
        _outcome(record, None, "skipped", "no requests for this order")
    record.summary = f"{cancelled} cancelled"
