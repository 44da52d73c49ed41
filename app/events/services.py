"""Provider events applied to requests and to the suppression list (step 6, spec §4, §7.3).

Rules (docs/events.md has the full table):

- **Idempotent.** Every provider event has a ``dedupe_key`` (the provider's event id, else
  the spec §7.3 key) under a unique constraint: a replay finds it and changes nothing. Each
  event runs in its own savepoint, so a racing duplicate (IntegrityError) or a bad event
  rolls back only itself.
- **Never backwards.** Status moves go through ``states.transition`` from named statuses
  only, so late and out-of-order events cannot undo progress: ``delivered`` and ``opened``
  never change a status; ``clicked`` moves only ``sent`` (and a request failed by a
  delivery failure, see below); nothing touches ``submitted``, ``expired``, ``cancelled``.
- **Order-independent.** The final state depends on which events arrived, not on their
  order: ``clicked_at`` keeps the earliest click, the standing failures each channel's latest
  failure by event time (``states.channel_failures``), and a click beats a bounce
  whichever comes first (a customer who clicked got a message).
- **Delivery failures** (bounce, dropped, undelivered, failed) of the *initial* message
  mark a ``sent`` request ``failed`` — the merchant sees it in the Requests Log and may
  press Retry — unless the customer already clicked or the other channel of a "both"
  request reached them. Failures of reminders only stand on the request.

Service functions flush and never commit; the view commits once per webhook call.
"""

import logging

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError

from app.events import parsing
from app.events.parsing import CLICKED, FAILED, EventProblem
from app.extensions import db
from app.lifecycle.models import SlotSend, TestimonialRequest, TestimonialRequestEvent
from app.lifecycle.services import mark_clicked
from app.lifecycle.states import FAILED as STATUS_FAILED
from app.lifecycle.states import SENT as STATUS_SENT
from app.lifecycle.states import add_event, transition
from app.optouts.models import OPTED_OUT, ContactEvent, normalise_contact
from app.optouts.services import DUPLICATE, STORED, record_contact_event

log = logging.getLogger("app.events")

IGNORED = "ignored"


class Ignored(Exception):
    """An event that is fine but not ours to record (another system's email, a status we
    do not track). Reported in the answer, never retried."""


# -- batches -----------------------------------------------------------------------------


def receive_sendgrid_batch(events, now):
    """Apply SendGrid's JSON array; one bad event never stops the others.

    Returns the answer for SendGrid (and for whoever debugs the integration)."""
    answer = {"received": len(events), "stored": 0, "duplicates": 0, "ignored": [], "rejected": []}
    parsed = []
    for index, raw in enumerate(events):
        try:
            parsed.append((index, raw, parsing.parse_sendgrid_event(raw)))
        except EventProblem as exc:
            answer["rejected"].append(_problem(index, raw, str(exc)))
    # A retried batch is mostly known events: one query finds them all.
    known = _known_keys([event.dedupe_key for _, _, event in parsed])
    seen = {}  # requests of this batch, held so the session keeps them between events
    for index, raw, event in parsed:
        if event.dedupe_key in known:
            answer["duplicates"] += 1
            continue
        try:
            outcome = apply_event(event, now, seen=seen)
        except EventProblem as exc:
            answer["rejected"].append(_problem(index, raw, str(exc)))
            continue
        except Ignored as exc:
            answer["ignored"].append(_problem(index, raw, str(exc), key="reason"))
            continue
        answer["stored" if outcome == STORED else "duplicates"] += 1
    answer["rejected"].sort(key=lambda item: item["index"])
    if answer["rejected"]:
        log.warning(
            "sendgrid events: %s of %s rejected: %s", len(answer["rejected"]), len(events), answer["rejected"][:5]
        )
    return answer


def _problem(index, raw, message, key="error"):
    item = {"index": index, key: message}
    if isinstance(raw, dict):
        for field in ("event", "sg_event_id"):
            if isinstance(raw.get(field), str):
                item[field] = raw[field][:100]
    return item


def _known_keys(keys):
    found = set()
    for start in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
        chunk = keys[start : start + 500]
        for model in (TestimonialRequestEvent, ContactEvent):
            found.update(db.session.scalars(select(model.dedupe_key).where(model.dedupe_key.in_(chunk))))
    return found


def apply_event(event, now, *, seen=None):
    """Record one provider event and its effects in a savepoint: STORED or DUPLICATE.

    Raises EventProblem (unknown request) or Ignored; either way nothing was written."""
    if event.kind is None:
        raise Ignored(f"{event.provider} event {event.raw_type!r} is not tracked")
    try:
        with db.session.begin_nested():
            return _apply(event, now, {} if seen is None else seen)
    except IntegrityError:
        # The same event arrived on another connection a moment ago (unique dedupe_key).
        log.info("%s event %s arrived twice at once; kept once", event.provider, event.dedupe_key)
        return DUPLICATE


def _apply(event, now, seen):
    occurred_at = event.occurred_at or now
    if event.kind in parsing.CONTACT_KINDS:
        try:
            req, slot = find_request(event, seen)
        except EventProblem:  # an unsubscribe is honoured even if its request is unknown
            req, slot = None, None
        return _apply_contact_event(event, req, slot, occurred_at, now)
    req, slot = find_request(event, seen)
    if req is None:
        raise Ignored(
            f"no request matches {event.provider} message {event.message_id or '(none)'}: "
            "not a testimonial request message"
        )
    if _request_event_exists(event.dedupe_key):
        return DUPLICATE
    _add_provider_event(req, slot, event, occurred_at)
    db.session.flush()
    if event.kind == CLICKED:
        apply_click(req, occurred_at)
    elif event.kind == FAILED:
        apply_delivery_failure(req, event, slot, occurred_at)
        if event.provider == "twilio" and event.error_code == parsing.TWILIO_OPT_OUT_CODE:
            phone = req.customer_phone or event.contact
            if phone:
                record_contact_event(
                    "sms",
                    phone,
                    OPTED_OUT,
                    occurred_at,
                    now,
                    source=f"{event.provider}_{event.error_code}",  # "twilio_21610"
                    provider="twilio",
                    dedupe_key=f"{event.dedupe_key}:optout",
                    detail=f"request {req.id}",
                )
    log.info(
        "step=6 %s %s request=%s campaign=%s slot=%s channel=%s",
        event.provider,
        event.raw_type,
        req.id,
        req.campaign_id,
        slot,
        event.channel,
    )
    return STORED


def _add_provider_event(req, slot, event, occurred_at):
    """The request's timeline entry for a provider's event, with what the provider said."""
    add_event(
        req.id,
        event.kind,
        occurred_at,
        channel=event.channel,
        slot=slot,
        provider=event.provider,
        provider_message_id=event.message_id,
        error_code=event.error_code,
        detail=event.detail,
        dedupe_key=event.dedupe_key,
        # A delivery failure as data: the provider already gave up on this message.
        retryable=False if event.kind == FAILED else None,
        error_kind=event.error_kind,
    )


def _request_event_exists(key):
    return db.session.scalar(select(TestimonialRequestEvent.id).where(TestimonialRequestEvent.dedupe_key == key))


def _apply_contact_event(event, req, slot, occurred_at, now):
    source = (
        f"{event.provider}_{event.raw_type}"
        if event.provider == "sendgrid"
        else ("sms_stop" if event.kind == OPTED_OUT else "sms_start")
    )
    contact = event.contact
    if not contact and req is not None:
        contact = req.customer_email if event.channel == "email" else req.customer_phone
    if not contact:
        raise EventProblem("the event names no contact")
    if req is not None:
        if _request_event_exists(event.dedupe_key):
            return DUPLICATE
        _add_provider_event(req, slot, event, occurred_at)
    outcome = record_contact_event(
        event.channel,
        contact,
        event.kind,
        occurred_at,
        now,
        source=source,
        provider=event.provider,
        dedupe_key=event.dedupe_key,
        detail=event.detail,
        only_if_source=("sendgrid_group_unsubscribe" if event.raw_type == "group_resubscribe" else None),
    )
    return STORED if req is not None else outcome


# -- Twilio ------------------------------------------------------------------------------


def receive_twilio_status(form, now):
    """A status callback: the answer's ``status`` is stored, duplicate or ignored.
    Raises EventProblem when required fields are missing (a 400: nothing written)."""
    event = parsing.parse_twilio_status(form)
    try:
        outcome = apply_event(event, now)
    except Ignored as exc:
        return {"status": IGNORED, "reason": str(exc), "message_sid": event.message_id}
    return {"status": outcome, "message_sid": event.message_id, "message_status": event.raw_type}


def receive_twilio_inbound(form, now):
    """An inbound text: STOP-like keywords opt the sender out, START-like ones back in."""
    event = parsing.parse_twilio_inbound(form)
    if event.kind is None:
        return {"status": IGNORED, "reason": "not an opt-out or opt-in keyword"}
    outcome = apply_event(event, now)
    return {"status": outcome, "action": event.kind}


# -- finding the request -----------------------------------------------------------------


def find_request(event, seen=None):
    """(request, slot) an event is about, or (None, None).

    SendGrid echoes our custom args (request id, slot): the dependable way. Otherwise,
    and for Twilio, the provider message id: every accepted send keeps it on its
    slot_sends row (the request's own column only holds the latest one)."""
    if event.request_id is not None:
        req = seen.get(event.request_id) if seen is not None else None
        req = req or db.session.get(TestimonialRequest, event.request_id)
        if req is None:
            raise EventProblem(f"no request with id {event.request_id}")
        if (
            event.channel == "email"
            and event.contact
            and req.customer_email
            and normalise_contact("email", req.customer_email) != event.contact
        ):
            # Another installation sharing the SendGrid account, or a forged id: never
            # let it touch a request that was sent to somebody else.
            raise EventProblem(f"request {req.id} was not sent to {event.contact}")
        if seen is not None:
            seen[req.id] = req
        slot = event.slot
        if slot is None and event.message_id:
            slot = _slot_of_message(req.id, event.channel, event.message_id)
        return req, slot
    if not event.message_id:
        return None, None
    row = db.session.execute(
        select(SlotSend.request_id, SlotSend.slot)
        .where(SlotSend.channel == event.channel, SlotSend.provider_message_id == event.message_id)
        .order_by(SlotSend.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        return db.session.get(TestimonialRequest, row.request_id), row.slot
    column = TestimonialRequest.email_message_id if event.channel == "email" else TestimonialRequest.sms_message_id
    req = db.session.scalar(select(TestimonialRequest).where(column == event.message_id).limit(1))
    return req, (event.slot if req is not None else None)


def _slot_of_message(request_id, channel, message_id):
    return db.session.scalar(
        select(SlotSend.slot)
        .where(
            SlotSend.request_id == request_id, SlotSend.channel == channel, SlotSend.provider_message_id == message_id
        )
        .limit(1)
    )


# -- effects on the request --------------------------------------------------------------


def apply_click(req, clicked_at):
    """``record_click`` semantics for a provider-reported click (one rule, in lifecycle)."""
    mark_clicked(req, clicked_at)


def apply_delivery_failure(req, event, slot, occurred_at):
    """Bounce / dropped / undelivered / failed after the provider accepted the message.

    (The standing failures were already updated by ``add_event``, which recorded the event.)"""
    if slot != 0 or other_channel_reached(req, event.channel):
        return
    failed = transition(
        req.id,
        STATUS_SENT,
        STATUS_FAILED,
        where=(TestimonialRequest.clicked_at.is_(None), TestimonialRequest.claimed_at.is_(None)),
        next_send_at=None,
    )
    if failed:
        log.warning("step=6 request=%s failed: the initial %s did not arrive (%s)", req.id, event.channel, event.detail)


def other_channel_reached(req, channel):
    """Did the initial message on the request's other channel go out and not fail since?"""
    other = "sms" if channel == "email" else "email"
    if other not in req.channels:
        return False
    accepted = exists().where(
        SlotSend.request_id == req.id, SlotSend.slot == 0, SlotSend.channel == other, SlotSend.status == SlotSend.SENT
    )
    reported_failed = exists().where(
        TestimonialRequestEvent.request_id == req.id,
        TestimonialRequestEvent.type == FAILED,
        TestimonialRequestEvent.channel == other,
        TestimonialRequestEvent.slot == 0,
        TestimonialRequestEvent.dedupe_key.is_not(None),
    )
    return bool(db.session.scalar(select(and_(accepted, ~reported_failed))))
