"""The intake's reads, built once as Core statements with bound parameters.

A webhook runs each of these once or twice; building an ORM query anew each time cost
about five times its execution (0.16 ms against 0.035 ms here), and even a Core
execution three times, so each is ``app.prepared.Prepared``: its text is made once per
shape and each run is one driver call. The parameters say what each reads: ``event_id``, ``source``,
``order_id``, ``products`` (the event's product ids), ``email``/``phone`` (the customer's,
None when missing: ``= NULL`` matches nothing), ``email_contact``/``phone_contact`` (as
the suppression list stores them), ``contact_hashes`` (as the erasure list does).
"""

from datetime import datetime

from sqlalchemy import and_, bindparam, func, insert, literal_column, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from app.clock import as_utc
from app.intake.active_campaigns import FINGERPRINT as CAMPAIGNS_FINGERPRINT
from app.intake.models import OrderCancellation, OrderEvent, OrderEventItem
from app.lifecycle.models import TestimonialRequest
from app.optouts.erasures import REFUSALS, contact_hashes
from app.optouts.models import ContactErasure, OptOut, normalise_contact
from app.prepared import Prepared

_events = OrderEvent.__table__
_cancellations = OrderCancellation.__table__
_requests = TestimonialRequest.__table__
_opt_outs = OptOut.__table__
_erasures = ContactErasure.__table__


_of_order = (_cancellations.c.source == bindparam("source"), _cancellations.c.order_id == bindparam("order_id"))
CANCELLATIONS = Prepared(
    select(_cancellations.c.item_id, _cancellations.c.kind, func.max(_cancellations.c.cancelled_at))
    .where(*_of_order)
    .group_by(_cancellations.c.item_id, _cancellations.c.kind)
)

# This order's requests (one per order × product) and the same customer's (asked once
# per campaign × product), of the event's products.
_earlier = (
    _requests.c.product_id.in_(bindparam("products", expanding=True)),
    or_(
        _requests.c.order_id == bindparam("order_id"),
        _requests.c.customer_email == bindparam("email"),
        _requests.c.customer_phone == bindparam("phone"),
    ),
)
EARLIER_REQUESTS = Prepared(
    select(_requests.c.id, _requests.c.order_id, _requests.c.product_id, _requests.c.campaign_id)
    .where(*_earlier)
    .order_by(_requests.c.id)
)

_customer_opt_outs = or_(
    and_(_opt_outs.c.channel == "email", _opt_outs.c.contact == bindparam("email_contact")),
    and_(_opt_outs.c.channel == "sms", _opt_outs.c.contact == bindparam("phone_contact")),
)
# Erasures in force for the customer's contacts (app.erasure keeps only their HMACs).
_customer_erasures = (
    _erasures.c.contact_hash.in_(bindparam("contact_hashes", expanding=True)),
    _erasures.c.lifted_at.is_(None),
)


def _count_and_max(table, *where):
    # max(id + 0), not max(id): PostgreSQL answers max(id) by walking the primary key down
    # from the newest row until one matches ``where``; for a new customer nothing does, so
    # it read the whole table on every webhook (0.9 ms at 4,400 requests, growing with it).
    # With an expression it uses ``where``'s indexes, as for the count.
    return (
        select(func.count(table.c.id)).where(*where).scalar_subquery(),
        select(func.coalesce(func.max(table.c.id + 0), 0)).where(*where).scalar_subquery(),
    )


# Everything a delivery's plan depends on, in one row: rows there are only ever added (and
# opt-outs removed), so a count and the highest id of each change whenever one does. Its
# first value counts the events with the delivery's id (0: not seen yet), its last ones are
# the campaigns' fingerprint (``campaigns_fingerprint``).
_SNAPSHOT_VALUES = (
    select(func.count(_events.c.id)).where(_events.c.event_id == bindparam("event_id")).scalar_subquery(),
    *_count_and_max(_cancellations, *_of_order),
    *_count_and_max(_requests, *_earlier),
    *_count_and_max(_opt_outs, _customer_opt_outs),
    *_count_and_max(_erasures, *_customer_erasures),  # a lift lowers the count
    *CAMPAIGNS_FINGERPRINT,  # app.intake.active_campaigns'
)
SNAPSHOT = Prepared(select(*_SNAPSHOT_VALUES))


def event_seen(snapshot):
    return snapshot[0] > 0


def campaigns_fingerprint(snapshot):
    return snapshot[-len(CAMPAIGNS_FINGERPRINT) :]


def unchanged(snapshot):
    """INSERT_EVENT_IF_UNCHANGED's parameters for a snapshot read earlier."""
    return {f"snapshot_{n}": value for n, value in enumerate(snapshot)}


def parameters(event, source):
    customer = event.customer
    return {
        "event_id": event.event_id,
        "source": source,
        "order_id": event.order_id,
        "products": sorted({item.product_id for item in event.items}),
        "email": customer.email or None,
        "phone": customer.phone or None,
        "email_contact": normalise_contact("email", customer.email) if customer.email else None,
        "phone_contact": normalise_contact("sms", customer.phone) if customer.phone else None,
        "contact_hashes": contact_hashes(customer.email, customer.phone),
    }


# The event's row (its requests and items: app.bulk.insert_values, one multi-row INSERT each).
INSERT_EVENT = insert(_events).returning(_events.c.id)
# The same row, written only if SNAPSHOT still reads what it read when the plan was made
# (``unchanged(snapshot)``, and ``parameters``' values): the check and the write are one
# statement. No row returned: something changed, decide again. The event's own values are
# the ``event_<column>`` parameters.
_event_columns = [column for column in _events.columns if column.key != "id"]
INSERT_EVENT_IF_UNCHANGED = Prepared(
    insert(_events)
    .from_select(
        [column.key for column in _event_columns],
        select(*[bindparam(f"event_{column.key}", type_=column.type) for column in _event_columns]).where(
            *[value == bindparam(f"snapshot_{n}") for n, value in enumerate(_SNAPSHOT_VALUES)]
        ),
    )
    .returning(_events.c.id)
)


# -- PostgreSQL: a delivery's rows in one statement ----------------------------------------
#
# The event's conditional INSERT, its requests and its items as one statement of
# data-modifying CTEs: the requests and items take the event's id from its RETURNING, so
# nothing is written unless the event is, and the client waits for the server once. The
# rows travel as one JSON text per table (``json_to_recordset``): the statement's parameter
# types are the same whatever the values (a list of integers would be sent as smallint[]
# or integer[], a list of NULLs as no type at all), so it stays one prepared statement.

REQUEST_COLUMNS = (
    "campaign_id",
    "order_id",
    "item_id",
    "product_id",
    "sku",
    "product_title",
    "product_image_url",
    "customer_email",
    "customer_phone",
    "customer_first_name",
    "customer_last_name",
    "channel",
    "token",
    "status",
    "trigger_at",
    "next_send_at",
    "next_slot",
    "reminder_count",
    "attempts",
    "resend_count",
    "created_at",
    "updated_at",
)
# ``request_id``: the earlier request an item points to; ``new_product``: the product of
# the new request it made (its id comes from the requests' RETURNING).
ITEM_COLUMNS = ("item_id", "product_id", "campaign_id", "outcome", "reason")
_ITEMS = OrderEventItem.__table__
_at_once_texts = {}


def _recordset(table, columns, dialect, extra=()):
    quote = dialect.identifier_preparer.quote
    declared = [f"{quote(name)} {table.c[name].type.compile(dialect)}" for name in columns]
    return ", ".join([*declared, *extra, "n INTEGER"])


def at_once_text(event_text, dialect):
    """The statement that writes a delivery (``event_text``: INSERT_EVENT_IF_UNCHANGED's,
    as bound). Its rows: (event id, product, request id) per new request, (event id, NULL,
    NULL) when it made none, nothing when the event was not written."""
    text = _at_once_texts.get(event_text)
    if text is not None:
        return text
    quote = dialect.identifier_preparer.quote
    requests = ", ".join(quote(name) for name in REQUEST_COLUMNS)
    items = ", ".join(quote(name) for name in ITEM_COLUMNS)
    given_requests = ", ".join(f"given.{quote(name)}" for name in REQUEST_COLUMNS)
    given_items = ", ".join(f"given.{quote(name)}" for name in ITEM_COLUMNS)
    text = _at_once_texts[event_text] = (
        f"WITH new_event AS ({event_text}), "
        f"new_requests AS (INSERT INTO testimonial_requests ({requests}, order_event_id) "
        f"SELECT {given_requests}, new_event.id FROM new_event, "
        f"json_to_recordset(%(at_once_requests)s::json) AS given({_recordset(_requests, REQUEST_COLUMNS, dialect)}) "
        "ORDER BY given.n RETURNING id, product_id), "
        f"new_items AS (INSERT INTO order_event_items ({items}, order_event_id, request_id) "
        f"SELECT {given_items}, new_event.id, coalesce(given.request_id, new_requests.id) FROM new_event "
        f"CROSS JOIN json_to_recordset(%(at_once_items)s::json) AS given("
        f"{_recordset(_ITEMS, ITEM_COLUMNS, dialect, ('request_id INTEGER', 'new_product VARCHAR(64)'))}) "
        "LEFT JOIN new_requests ON new_requests.product_id = given.new_product ORDER BY given.n) "
        "SELECT new_event.id, new_requests.product_id, new_requests.id FROM new_event LEFT JOIN new_requests ON true"
    )
    return text


# -- PostgreSQL: the snapshot and the plan's three reads in one statement ---------------------
#
# One row: SNAPSHOT's values, then the rows of CANCELLATIONS, EARLIER_REQUESTS and REFUSALS,
# each as a JSON array of arrays (psycopg hands them over decoded). Each statement a
# pipeline carries costs psycopg's Python as much as the server's work on these reads.


def _as_json(statement, order_by=None):
    rows = statement.subquery()
    row = func.json_build_array(*rows.c)
    aggregated = func.json_agg(row if order_by is None else aggregate_order_by(row, rows.c[order_by]))
    return select(func.coalesce(aggregated, literal_column("'[]'::json"))).scalar_subquery()


READS_AT_ONCE = Prepared(
    select(
        *_SNAPSHOT_VALUES,
        _as_json(CANCELLATIONS.statement),
        _as_json(EARLIER_REQUESTS.statement, order_by="id"),
        _as_json(REFUSALS.statement),
    )
)


def reads_at_once_parameters(params):
    """READS_AT_ONCE's parameters: ``parameters``', and REFUSALS' name for the HMACs."""
    return params | {"hashes": params["contact_hashes"]}


def split_reads_at_once(row):
    """(snapshot, [cancellation rows, earlier request rows, refusal rows]) from READS_AT_ONCE's
    row, the rows as the separate reads give them (times as datetimes, in UTC)."""
    *snapshot, cancellations, earlier, refusals = row
    cancellations = [(item_id, kind, as_utc(datetime.fromisoformat(at))) for item_id, kind, at in cancellations]
    refusals = [(kind, at if at is None else datetime.fromisoformat(at)) for kind, at in refusals]
    return tuple(snapshot), [cancellations, [tuple(r) for r in earlier], refusals]
