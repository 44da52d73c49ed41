"""Steps 1–4: an order event becomes per-product testimonial requests (or cancels them).

``ingest_order_event`` is the one intake path: the generic webhook and the Shopify
webhook both end here, so one set of rules decides. Flushes only: the caller commits.
"""

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, func, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.bulk import PreparedInsert, binders
from app.clock import as_utc, isoformat
from app.database import read_only_options
from app.extensions import db
from app.group_commit import write_together
from app.intake import statements
from app.intake.active_campaigns import active_campaigns
from app.intake.eligibility import Cancellation, cancellation_reason, cancelled_by, evaluate_item
from app.intake.models import ERASED_PAYLOAD, OrderCancellation, OrderEvent, OrderEventItem
from app.intake.schema import LATEST_SUPPORTED, SchemaError
from app.lifecycle import policy
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import cancel_request
from app.lifecycle.states import SCHEDULED, SUBMITTED, TERMINAL
from app.optouts.erasures import refusals, refusals_read
from app.prepared import AS_RETURNED, Bound, Prepared, native, rows_together
from app.transactions import log_after_commit

log = logging.getLogger("app.intake")
_requests = TestimonialRequest.__table__
_items = OrderEventItem.__table__


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


def ingest(event, raw_payload, now, *, attempt=0, source="generic", cancel_item_ids=None, on_recorded=None):
    """One pass of the intake for a delivery (flushes): (OrderEvent, duplicate).

    The caller commits through ``app.transactions.commit_with_retry``: a unique-constraint
    race (a concurrent delivery of the same event or order) raises IntegrityError, is rolled
    back there and this runs again with the next ``attempt``: that pass sees the winner's rows.

    ``on_recorded(record)`` runs on a new (not duplicate) event inside the same transaction:
    a source adds what only it knows (Shopify: topic, shop, line items it left out).

    On the first attempt a delivery is decided from a read-only snapshot (``read_ahead``),
    so the write transaction holds the lock only to insert, the event's row only if that
    snapshot still holds. On SQLite those INSERTs share one transaction and one commit
    with the other webhooks this process is writing at the same time
    (``app.group_commit``)."""
    if attempt:
        log.info("intake race on event %s, evaluating again", event.event_id)
    # What only a source adds must be in the event's own transaction: the one that writes
    # the rows together is committed before the source could add anything.
    together = on_recorded is None
    ahead = read_ahead(event, now, source, keep=together) if attempt == 0 else None
    try:
        record, duplicate = ingest_order_event(
            event, raw_payload, now, source=source, cancel_item_ids=cancel_item_ids, ahead=ahead, together=together
        )
    finally:
        if ahead is not None and ahead.connection is not None:
            ahead.connection.close()  # back to the pool, whatever happened (closed already when written)
    if on_recorded is not None and not duplicate:
        on_recorded(record)
        db.session.flush()
    return record, duplicate


def _log_once_committed(*line):
    """The step lines of an event, written after its commit (``app.transactions``)."""
    log_after_commit(log, *line)


def read_ahead(event, now, source, *, keep=False):
    """A delivery's plan, decided outside the write lock; None when it must be decided
    under the lock (a cancellation, a replay, or a caller already inside a transaction).

    Four reads outside any write transaction (SQLite: a read transaction, no lock at all
    in WAL mode; PostgreSQL: one statement, ``statements.READS_AT_ONCE``, in autocommit):
    first the snapshot of everything the plan depends on (it says whether the event id
    was seen, and has the campaigns' fingerprint), then the order's remembered
    cancellations, the earlier requests that matter and the customer's opt-outs; then the
    plan. The write
    transaction inserts the event only if the snapshot still reads the same
    (``INSERT_EVENT_IF_UNCHANGED``). The snapshot is read first: a change made while the
    plan is read (on PostgreSQL each statement sees what is committed when it starts)
    then also shows in the write transaction's snapshot, and the plan is not used.

    On PostgreSQL the reads run on a pooled connection of their own, in autocommit, not
    in the session: nothing is written, so there is no transaction to keep, and the
    session's transaction bookkeeping was a tenth of a webhook's time in a sampling
    profile. ``keep``: when a plan is returned that connection is kept
    (``plan.connection``) for ``_write_at_once``: one checkout from the pool a webhook,
    not two; whoever keeps it closes it."""
    if event.event_type in CANCELLING or db.session().in_transaction():
        return None
    started = time.perf_counter()
    params = statements.parameters(event, source)
    engine = db.session.get_bind()
    dialect = engine.dialect
    own = dialect.name == "postgresql"
    if own:
        connection = engine.connect().execution_options(**read_only_options(dialect))
    else:
        connection = db.session.connection(execution_options=read_only_options(dialect))
    kept = False
    try:
        if own:  # one statement: see statements.READS_AT_ONCE
            bound = statements.READS_AT_ONCE.bind(dialect, statements.reads_at_once_parameters(params))
            [[row]] = rows_together(connection, [native(bound)])
            snapshot, reads = statements.split_reads_at_once(row)
        else:
            snapshot, *reads = rows_together(
                connection, [statements.SNAPSHOT.bind(dialect, params), *_reads(event, params)]
            )
            snapshot = tuple(snapshot[0])
        if statements.event_seen(snapshot):
            return None
        fingerprint = statements.campaigns_fingerprint(snapshot)
        plan = _plan_requests(event, now, params, reads, fingerprint, connection if own else None)
        plan.snapshot, plan.started, plan.params = snapshot, started, params
        kept = keep and own
        plan.connection = connection if kept else None
        return plan
    finally:
        # Nothing was written. On PostgreSQL the reads ran in autocommit: closing sends no
        # ROLLBACK (psycopg forgets every statement it has prepared at each one, and the
        # intake's statements would be parsed and planned again at every webhook).
        if not own:
            db.session.rollback()
        elif not kept:
            connection.close()


def ingest_order_event(event, raw_payload, now, *, source="generic", cancel_item_ids=None, ahead=None, together=False):
    """Record the event and act on it. Returns (OrderEvent, duplicate). Flushes only.

    With ``ahead`` (``read_ahead``'s plan) whose snapshot still holds, a new delivery is
    three statements: one INSERT each for the event (which checks the snapshot), its
    requests and its items, however many items it has (PostgreSQL: plus the order's
    advisory lock). ``together``: written in a transaction of their own, committed before
    this returns: on SQLite by ``app.group_commit.write_together`` (with the other
    webhooks of the moment), on PostgreSQL as one statement sent with the lock
    (``_write_at_once``). Without a plan, or when the snapshot moved, it reads what
    ``read_ahead`` reads, in the session's transaction."""
    started = time.perf_counter()
    params = statements.parameters(event, source) if ahead is None else ahead.params
    if ahead is not None:
        # Everything the INSERTs send is made ready first: what runs under the write
        # lock is the three statements.
        record = _new_record(event, raw_payload, now, source)
        _decided(record, event, ahead, now, ahead.started)
        insert = _event_insert_if_unchanged(record, params | statements.unchanged(ahead.snapshot))
        engine = db.session.get_bind()
        if together and engine.dialect.name == "postgresql":
            written = _write_at_once(insert, ahead, order_lock(source, event.order_id))
        elif together:
            written = write_together(engine, lambda connection: _write_all(connection, insert, ahead))
        else:
            lock = order_lock(source, event.order_id)
            written = _write_all(db.session.connection(), insert, ahead, lock)
        if written is not None:
            record.id, ids = written
            if together:  # committed already, by another transaction than the session's
                make_transient_to_detached(record)
            else:
                _joins_session(record)
            _recorded(record, event, ahead, ids)
            return record, False
    lock_order(source, event.order_id)
    existing = db.session.scalar(select(OrderEvent).where(OrderEvent.event_id == event.event_id))
    if existing is not None:
        if source == "generic" and (existing.source, existing.order_id, existing.event_type) != (
            source,
            event.order_id,
            event.event_type,
        ):
            log.warning(
                "step=1 event %s refused: its id was first used for %s of order %s, now %s of order %s",
                event.event_id,
                existing.event_type,
                existing.order_id,
                event.event_type,
                event.order_id,
            )
            raise EventIdReused(event, existing)
        log.info("step=1 duplicate event %s for order %s ignored", event.event_id, event.order_id)
        return existing, True
    record = _new_record(event, raw_payload, now, source)
    if event.event_type not in CANCELLING:
        plan = _plan_requests(event, now, params, rows_together(db.session.connection(), _reads(event, params)))
        _decided(record, event, plan, now, started)
        _insert_event(record)
        _recorded(record, event, plan, _insert_plan(db.session.connection(), plan, record.id))
        return record, False
    db.session.add(record)
    db.session.flush()
    _cancel_order(record, event, now, cancel_item_ids, source)
    record.processed_at = now
    record.processing_ms = _elapsed_ms(started)
    db.session.flush()
    _log_step_1(record, event, [(i.request_id, i.campaign_id) for i in record.items if i.outcome == "cancelled"])
    return record, False


def _new_record(event, raw_payload, now, source):
    return OrderEvent(
        source=source,
        event_id=event.event_id,
        event_type=event.event_type,
        order_id=event.order_id,
        occurred_at=event.occurred_at,
        received_at=now,
        payload=raw_payload if isinstance(raw_payload, str) else json.dumps(raw_payload),
    )


def _decided(record, event, plan, now, started):
    """The event's row once its plan is made: the rest is three INSERTs (event, requests,
    items), so the time measured here is the creation time the SLO panel reports."""
    record.summary = plan.summary
    if plan.erased:  # not even the webhook body of an erased customer is kept
        record.payload = ERASED_PAYLOAD
    record.processed_at = now
    record.processing_ms = _elapsed_ms(started)
    _rows(event, plan, now)


def _log_step_1(record, event, acted):
    # Logged once the event is processed, so the line names the requests it made or stopped.
    _log_once_committed(
        "step=1 order event %s (%s) for order %s received: %s; request=%s campaign=%s",
        event.event_id,
        event.event_type,
        event.order_id,
        record.summary,
        ",".join(str(r) for r, _ in acted) or "-",
        ",".join(sorted({str(c) for _, c in acted})) or "-",
    )


def _elapsed_ms(started):
    return round((time.perf_counter() - started) * 1000, 2)


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


def order_lock(source, order_id):
    """The statement that serialises the events of one order until the transaction ends
    (PostgreSQL), bound; None elsewhere.

    A cancellation and a delivery of the same order in two concurrent transactions
    would each miss the other's uncommitted rows: the cancellation finds no request to
    stop, the delivery no cancellation. SQLite needs nothing: every transaction there
    takes the write lock when it begins (app/database.py).
    """
    dialect = db.session.get_bind().dialect
    if dialect.name != "postgresql":
        return None
    key = int.from_bytes(
        hashlib.blake2b(f"order:{source}:{order_id}".encode(), digest_size=8).digest(), "big", signed=True
    )
    return _LOCK_ORDER.bind(dialect, {"key": key})


_LOCK_ORDER = Prepared(select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger))))


def lock_order(source, order_id):
    """``order_lock``, taken now."""
    lock = order_lock(source, order_id)
    if lock is not None:
        lock.run(db.session.connection())


def _reads(event, params):
    """The plan's reads after the snapshot, bound (``app.prepared``): the order's remembered
    cancellations, the earlier requests of its products, the customer's opt-outs and
    erasures (None: the customer has no contact to look up)."""
    dialect = db.session.get_bind().dialect
    return [
        statements.CANCELLATIONS.bind(dialect, params),
        statements.EARLIER_REQUESTS.bind(dialect, params),
        refusals_read(params["email_contact"], params["phone_contact"], params["contact_hashes"], dialect),
    ]


# -- a delivery: decide everything, then write it with three INSERTs ---------------------------


@dataclass
class _Outcome:
    """One order_event_items row to write; ``new_request`` points into the plan's requests
    when the row is the item's new request (its id is known after the INSERT)."""

    item: object
    outcome: str
    reason: str | None = None
    campaign_id: int | None = None
    request_id: int | None = None
    new_request: int | None = None


@dataclass
class _Plan:
    requests: list = field(default_factory=list)  # (item, ActiveCampaign, channel, due)
    outcomes: list = field(default_factory=list)
    summary: str = ""
    erased: str | None = None  # the customer asked to be erased: why every item is skipped
    log_lines: list = field(default_factory=list)  # (format, *args): logged once written
    snapshot: tuple | None = None  # read_ahead's: what the plan was decided from
    request_rows: list = field(default_factory=list)  # _rows': what _insert_plan inserts
    item_rows: list = field(default_factory=list)
    request_insert: PreparedInsert | None = None  # the same, ready to run
    item_insert: PreparedInsert | None = None
    started: float | None = None
    params: dict | None = None  # read_ahead's statements.parameters: the event's, once
    connection: object = None  # read_ahead's autocommit connection, kept for _write_at_once (PostgreSQL)


class SendTimeOutOfRange(SchemaError):
    """The event's time plus a campaign's delay lies past what the app stores (a 400:
    the sender's time is wrong; nothing is written)."""

    def __init__(self, event, campaign):
        super().__init__(
            f"occurred_at {isoformat(event.occurred_at)} plus the {campaign.delay_days} days' delay of campaign "
            f"{campaign.id} is a send time after {LATEST_SUPPORTED:%Y}; check the event's time",
            "occurred_at",
        )


def send_time(event, campaign):
    try:
        due = policy.initial_due_at(event.occurred_at, campaign.delay_days)
    except OverflowError:
        raise SendTimeOutOfRange(event, campaign) from None
    if due >= LATEST_SUPPORTED:
        raise SendTimeOutOfRange(event, campaign)
    return due


def _plan_requests(event, now, params, reads, campaigns_fingerprint=None, connection=None):
    """Steps 2–3 for every item at once: what to create and why each other item is skipped.
    ``reads``: the rows of ``_reads``' statements; ``connection``: the one they were read
    on, when it is not the session's (the campaigns are read there on a change)."""
    plan = _Plan()
    cancelled_rows, earlier_rows, refusal_rows = reads
    cancellations = tuple(Cancellation(item_id, kind, as_utc(at)) for item_id, kind, at in cancelled_rows)
    campaigns = active_campaigns(event.trigger, campaigns_fingerprint, connection)
    earlier, asked = _earlier_requests(earlier_rows, params) if campaigns else ({}, set())
    # The customer's opt-outs and whether they were erased (app.erasure): an erased
    # customer's webhook body is not kept, whether or not a campaign would have asked.
    opted_out, plan.erased = refusals(refusal_rows) if refusal_rows is not None else (set(), None)
    first_item_of_product = {}
    created = skipped = 0
    for item in event.items:
        cancellation = cancelled_by(event.occurred_at, item, cancellations)
        if cancellation is not None:
            plan.outcomes.append(_Outcome(item, "skipped", cancellation_reason(cancellation)))
            plan.log_lines.append(
                ("step=2 skipped order=%s item=%s: %s", event.order_id, item.id, cancellation_reason(cancellation))
            )
            skipped += 1
            continue
        # Step 3: one request per product; quantity and repeated lines do not multiply.
        if item.product_id in first_item_of_product:
            plan.outcomes.append(
                _Outcome(
                    item,
                    "skipped",
                    f"same product as item {first_item_of_product[item.product_id]} (one request per product)",
                )
            )
            skipped += 1
            continue
        first_item_of_product[item.product_id] = item.id
        if not campaigns:
            plan.outcomes.append(_Outcome(item, "skipped", f"no active campaign with trigger '{event.trigger}'"))
            skipped += 1
            continue
        if plan.erased:
            plan.outcomes.append(_Outcome(item, "skipped", plan.erased))
            skipped += 1
            continue
        if item.product_id in earlier:
            request_id, campaign_id = earlier[item.product_id]
            plan.outcomes.append(
                _Outcome(
                    item,
                    "skipped",
                    f"already requested by campaign {campaign_id} (request {request_id})",
                    campaign_id,
                    request_id,
                )
            )
            skipped += 1
            continue
        winner = None
        for campaign in campaigns:
            if winner is not None:
                plan.outcomes.append(
                    _Outcome(item, "skipped", f"already requested by campaign {winner.id}", campaign.id)
                )
                continue
            verdict = evaluate_item(
                campaign.rules, event, item, opted_out=opted_out, already_asked=(campaign.id, item.product_id) in asked
            )
            if not verdict.eligible:
                plan.outcomes.append(_Outcome(item, "skipped", verdict.reason, campaign.id))
                plan.log_lines.append(
                    (
                        "step=2 skipped order=%s item=%s campaign=%s: %s",
                        event.order_id,
                        item.id,
                        campaign.id,
                        verdict.reason,
                    )
                )
                continue
            winner = campaign
            due = send_time(event, campaign)
            # A send time already past is due at the next tick.
            plan.requests.append((item, campaign, verdict.channel, max(due, now)))
            plan.outcomes.append(_Outcome(item, "created", campaign_id=campaign.id, new_request=len(plan.requests) - 1))
        if winner:
            created += 1
        else:
            skipped += 1
    plan.summary = f"{created} created, {skipped} skipped"
    return plan


def _earlier_requests(rows, params):
    """Both questions about earlier requests of the event's products, from one query's rows:
    this order's own (one request per order × product) → {product: (request, campaign)};
    the same customer's other orders per campaign (asked once) → {(campaign, product)}."""
    earlier, asked = {}, set()
    for request_id, order_id, product_id, campaign_id in rows:
        if order_id == params["order_id"]:
            earlier.setdefault(product_id, (request_id, campaign_id))
        else:
            asked.add((campaign_id, product_id))
    return earlier, asked


def _event_values(record):
    return {column.key: getattr(record, column.key) for column in OrderEvent.__table__.columns if column.key != "id"}


def _event_insert_if_unchanged(record, unchanged):
    """``INSERT_EVENT_IF_UNCHANGED`` for ``record``, ready to run (``app.prepared``):
    ``unchanged`` is ``statements.parameters`` and ``statements.unchanged``'s."""
    values = {f"event_{key}": value for key, value in _event_values(record).items()} | unchanged
    return statements.INSERT_EVENT_IF_UNCHANGED.bind(db.session.get_bind().dialect, values)


def _insert_event(record):
    """The new event's row by one Core INSERT (a flush of one new object costs the ORM's
    whole unit of work)."""
    record.id = db.session.execute(statements.INSERT_EVENT, _event_values(record)).scalar_one()
    _joins_session(record)


def _joins_session(record):
    """``record``, whose row is written, joins the session as that row, loaded."""
    make_transient_to_detached(record)
    db.session.add(record)


def _write_all(connection, insert, plan, lock=None):
    """A planned delivery's three INSERTs (``insert``: the event's, only if the snapshot
    still holds): (event id, request ids in plan order), or None when nothing was written.
    Uses only ``connection``: it may run in another thread (``app.group_commit``).
    ``lock`` (``order_lock``'s), taken first: it and the event's INSERT go to the server
    together (one pipeline on PostgreSQL)."""
    if lock is None:
        event_id = insert.run(connection).scalar()
    else:
        returned = rows_together(connection, [lock, insert])[1]
        event_id = returned[0][0] if returned else None
    if event_id is None:
        return None
    return event_id, _insert_plan(connection, plan, event_id)


def _write_at_once(insert, plan, lock):
    """PostgreSQL: a planned delivery written by the order's lock and one statement
    (``statements.at_once_text``: the event's INSERT, only if the snapshot still holds,
    its requests and its items) sent together on an autocommit connection. The server
    runs what one pipeline sends in one implicit transaction, committed at its end (or
    rolled back whole by an error): one wait for the server, no BEGIN or COMMIT of their
    own. (event id, request ids in plan order), or None when nothing was written."""
    connection = plan.connection  # read_ahead's, kept
    try:
        dialect = connection.dialect
        values = dict(insert.values)
        values["at_once_requests"] = _json_rows(dialect, _requests, statements.REQUEST_COLUMNS, plan.request_rows)
        values["at_once_items"] = _json_rows(
            dialect,
            _items,
            statements.ITEM_COLUMNS,
            plan.item_rows,
            [
                {
                    "request_id": outcome.request_id,
                    "new_product": None if outcome.new_request is None else outcome.item.product_id,
                }
                for outcome in plan.outcomes
            ],
        )
        # Native placeholders: psycopg would convert this text's at every run (it is long).
        written = native(Bound(statements.at_once_text(insert.text, dialect), values, AS_RETURNED))
        rows = rows_together(connection, [lock, written])[1]
    finally:
        # Back to the pool before anything else: a moved snapshot is decided again in the
        # session, which takes a connection of its own.
        connection.close()
    if not rows:
        return None
    id_of_product = {product_id: request_id for _, product_id, request_id in rows if request_id is not None}
    return rows[0][0], [id_of_product[item.product_id] for item, *_ in plan.requests]


def _json_rows(dialect, table, columns, rows, extras=None):
    """``rows`` for ``json_to_recordset``: each column's value as its type binds it (UTC
    times made naive, as the columns keep them), then the row's ``extras`` (a dict per
    row, if any) and its number."""
    bind = binders(dialect, table, columns)
    return json.dumps(
        [
            {**{name: bind[name](row[name]) for name in columns}, **extra, "n": n}
            for n, (row, extra) in enumerate(zip(rows, extras or [{}] * len(rows), strict=True))
        ],
        default=datetime.isoformat,
    )


def _rows(event, plan, now):
    """The rows of the plan's requests and items, made before the write transaction begins
    (on SQLite it holds the database's one write lock): the ids they point to are filled
    in as the INSERTs return them."""
    customer = event.customer
    plan.request_rows = [
        dict(
            campaign_id=campaign.id,
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
            status=SCHEDULED,
            trigger_at=event.occurred_at,
            next_send_at=due,
            next_slot=0,
            reminder_count=0,
            attempts=0,
            resend_count=0,
            created_at=now,
            updated_at=now,
        )
        for item, campaign, channel, due in plan.requests
    ]
    plan.item_rows = [
        dict(
            item_id=outcome.item.id,
            product_id=outcome.item.product_id,
            campaign_id=outcome.campaign_id,
            outcome=outcome.outcome,
            reason=outcome.reason,
        )
        for outcome in plan.outcomes
    ]
    dialect = db.session.get_bind().dialect
    if dialect.name == "sqlite":  # made now: the write lock is taken for the INSERTs alone
        _prepare_inserts(plan, dialect)


def _prepare_inserts(plan, dialect):
    plan.request_insert = PreparedInsert(
        dialect, _requests, plan.request_rows, ("product_id", "id"), later=("order_event_id",)
    )
    plan.item_insert = PreparedInsert(dialect, _items, plan.item_rows, later=("order_event_id", "request_id"))


def _insert_plan(connection, plan, event_id):
    """The requests and items of an event whose row is written: one multi-row INSERT each,
    made ready before the transaction on SQLite (``_rows``). Returns the request ids in plan order."""
    if plan.request_insert is None:
        _prepare_inserts(plan, connection.dialect)
    # One product per request in an event: the returned product ids say which id is whose.
    id_of_product = dict(plan.request_insert.run(connection, order_event_id=event_id))
    ids = [id_of_product[item.product_id] for item, *_ in plan.requests]
    request_ids = [o.request_id if o.new_request is None else ids[o.new_request] for o in plan.outcomes]
    plan.item_insert.run(connection, order_event_id=event_id, request_id=request_ids)
    return ids


def _recorded(record, event, plan, ids):
    """The event's requests and items are written (``ids``: the requests'): the record and
    the plan say so, and the step lines wait for the commit."""
    for outcome in plan.outcomes:
        if outcome.new_request is not None:
            outcome.request_id = ids[outcome.new_request]
    # The answer and Shopify's additions read record.items: give it the rows just written.
    items = [
        OrderEventItem(**row, order_event_id=record.id, request_id=outcome.request_id)
        for outcome, row in zip(plan.outcomes, plan.item_rows, strict=True)
    ]
    set_committed_value(record, "items", items)
    for line in plan.log_lines:
        _log_once_committed(*line)
    if plan.requests:
        _log_created(event, plan, ids)
    _log_step_1(record, event, [(o.request_id, o.campaign_id) for o in plan.outcomes if o.outcome == "created"])


def _log_created(event, plan, ids):
    """Steps 2–4 of the requests made, one line each for all of them (a line per request
    and step was most of the log writing a webhook cost); each line names them all
    (``request=11,12``), then says what each one is."""
    made = list(zip(plan.requests, ids, strict=True))
    named = (
        ",".join(str(request_id) for _, request_id in made),
        ",".join(sorted({str(campaign.id) for (_, campaign, _, _), _ in made})),
        event.order_id,
    )
    _log_once_committed(
        "step=2 eligible request=%s campaign=%s order=%s: %s",
        *named,
        "; ".join(
            f"request {request_id} item {item.id} by campaign {campaign.id} channel {channel}"
            for (item, campaign, channel, _), request_id in made
        ),
    )
    _log_once_committed(
        "step=3 split request=%s campaign=%s order=%s: %s",
        *named,
        "; ".join(
            f"request {request_id} product {item.product_id} from items "
            + ", ".join(i.id for i in event.items if i.product_id == item.product_id)
            for (item, *_), request_id in made
        ),
    )
    _log_once_committed(
        "step=4 created request=%s campaign=%s order=%s: %s",
        *named,
        "; ".join(
            f"request {request_id} product {item.product_id} due {due.isoformat()}"
            for (item, _, _, due), request_id in made
        ),
    )


def _cancel_order(record, event, now, cancel_item_ids, source):
    """order.cancelled / order.refunded: remember it, and stop the order's requests not
    yet submitted whose delivery happened no later than the cancellation.

    With ``cancel_item_ids`` (a partial refund) only those items' requests stop.
    """
    kind = CANCELLING[event.event_type]
    db.session.add_all(
        OrderCancellation(
            source=source,
            order_id=event.order_id,
            item_id=item_id,
            kind=kind,
            cancelled_at=event.occurred_at,
            order_event_id=record.id,
        )
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
            db.session.add(
                OrderEventItem(
                    order_event_id=record.id,
                    item_id=req.item_id,
                    product_id=req.product_id,
                    campaign_id=req.campaign_id,
                    outcome="skipped",
                    request_id=req.id,
                    reason=f"not cancelled: delivered at {isoformat(req.trigger_at)}, after this {kind} "
                    f"at {isoformat(event.occurred_at)}",
                )
            )
            continue
        if req.status in TERMINAL:
            why = "already submitted" if req.status == SUBMITTED else f"already {req.status}"
            db.session.add(
                OrderEventItem(
                    order_event_id=record.id,
                    item_id=req.item_id,
                    product_id=req.product_id,
                    campaign_id=req.campaign_id,
                    outcome="skipped",
                    reason=f"not cancelled: {why}",
                    request_id=req.id,
                )
            )
            continue
        if cancel_request(req, now, f"{reason} (event {event.event_id})"):
            cancelled += 1
            db.session.add(
                OrderEventItem(
                    order_event_id=record.id,
                    item_id=req.item_id,
                    product_id=req.product_id,
                    campaign_id=req.campaign_id,
                    outcome="cancelled",
                    reason=reason,
                    request_id=req.id,
                )
            )
    if not requests and order_has_requests:
        # A partial refund of items we never asked about: say so, not "no requests".
        _outcome(
            record,
            None,
            "skipped",
            f"no requests for the refunded items ({', '.join(cancel_item_ids)}); the order's other requests go on",
        )
    elif not requests:
        _outcome(record, None, "skipped", "no requests for this order")
    record.summary = f"{cancelled} cancelled"
