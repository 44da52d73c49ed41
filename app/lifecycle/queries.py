"""Read-side queries behind the Requests Log: the filter, one page, a capped count, the
export stream and the detail page's related rows.

Written for a log of hundreds of thousands of requests on SQLite:
- pages are ``ORDER BY id DESC`` (ids grow with creation, so newest first walks the
  primary key backwards and stops after one page);
- the count is capped (``COUNT(*)`` over a sub-select with ``LIMIT``), and skipped
  entirely when the first page is not full;
- an e-mail search is an index range, not a ``LIKE`` over the table;
- the export reads plain columns (no ORM objects) in keyset chunks (``id < last``), never
  ``OFFSET``.
"""

import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, case, func, or_, select

from app.campaigns.models import Campaign
from app.dbtypes import UTCDateTime
from app.extensions import db
from app.lifecycle.models import SlotSend, TestimonialRequest, TestimonialRequestEvent, describe_failures
from app.lifecycle.names import mask_phone  # noqa: F401  (the templates' and other modules' name for it)
from app.lifecycle.states import CANCELLED, FAILED
from app.providers.base import UNKNOWN, Failure

PAGE_SIZE = 50
COUNT_CAP = 5000
EXPORT_CHUNK = 2000

R = TestimonialRequest
PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{6,}$")


@dataclass(frozen=True)
class RequestFilter:
    """What the merchant narrowed the log to (all optional; dates are UTC days, inclusive)."""

    status: str | None = None
    campaign_id: int | None = None
    channel: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    sent_from: date | None = None
    sent_to: date | None = None
    has_error: bool = False
    q: str | None = None

    def to_args(self):
        """The filter as query-string arguments (for links, hidden fields and the export)."""
        args = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, "", False):
                continue
            args[f.name] = "1" if value is True else value.isoformat() if isinstance(value, date) else str(value)
        return args

    def is_empty(self):
        return not self.to_args()

    def conditions(self):
        where = []
        if self.status:
            where.append(R.status == self.status)
        if self.campaign_id:
            where.append(R.campaign_id == self.campaign_id)
        if self.channel:
            where.append(R.channel == self.channel)
        where += _day_range(R.created_at, self.created_from, self.created_to)
        where += _day_range(R.sent_at, self.sent_from, self.sent_to)
        if self.has_error:
            where.append(or_(R.email_failure_id.is_not(None), R.sms_failure_id.is_not(None)))
        if self.q:
            where.append(search_condition(self.q))
        return where


def _day_range(column, first, last):
    where = []
    if first:
        where.append(column >= datetime.combine(first, time.min, tzinfo=UTC))
    if last:
        where.append(column < datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC))
    return where


def _prefix(column, text):
    # An index range instead of LIKE 'text%': SQLite's LIKE is case-insensitive and so
    # cannot use an ordinary index; stored e-mails are lower case already.
    return and_(column >= text, column < text + "\U0010ffff")


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_condition(q):
    """One search box for order id, e-mail, phone and product (id, SKU or title).

    The shape of the text picks the columns, so the common searches stay on indexes:
    an e-mail is an index range, a full international number (+…) an index lookup. A
    national number (no country code) matches the phone's trailing digits and a word
    matches inside product titles; those two read the table.
    """
    q = q.strip()
    order_id = q.lstrip("#")
    if "@" in q:
        return _prefix(R.customer_email, q.lower())
    if PHONE_LIKE.match(q) and sum(c.isdigit() for c in q) >= 7:
        digits = re.sub(r"\D", "", q)
        if q.startswith("+"):
            return or_(R.customer_phone == f"+{digits}", R.order_id == order_id)
        # Stored phones are E.164; a number typed without its country code matches the
        # trailing digits. Long digit strings are often order numbers too.
        return or_(R.order_id == order_id, R.customer_phone == f"+{digits}", R.customer_phone.like(f"%{digits}"))
    return or_(
        R.order_id == order_id,
        R.product_id == q,
        R.sku == q,
        _prefix(R.customer_email, q.lower()),
        R.product_title.ilike(f"%{_escape_like(q)}%", escape="\\"),
    )


@dataclass
class Page:
    rows: list
    number: int
    has_next: bool
    total: int  # exact when not capped
    capped: bool  # True: there are at least ``total`` matching rows

    @property
    def has_prev(self):
        return self.number > 1

    @property
    def pages(self):
        return max(1, -(-self.total // PAGE_SIZE))

    @property
    def first_index(self):
        return (self.number - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last_index(self):
        return (self.number - 1) * PAGE_SIZE + len(self.rows)


def requests_page(flt, number=1, *, per_page=PAGE_SIZE):
    """One page of the log, newest first, with a cheap count."""
    number = max(1, number)
    where = flt.conditions()
    offset = (number - 1) * per_page
    rows = db.session.scalars(select(R).where(*where).order_by(R.id.desc()).limit(per_page + 1).offset(offset)).all()
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    if number == 1 and not has_next:
        total, capped = len(rows), False  # the whole result is on this page
    else:
        total = capped_count(where)
        capped = total > COUNT_CAP
        total = min(total, COUNT_CAP) if capped else total
    return Page(rows, number, has_next, total, capped)


def capped_count(where, cap=COUNT_CAP):
    """``min(count, cap + 1)``: a count that stops reading after ``cap`` rows."""
    inner = select(R.id).where(*where).limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(inner))


def failed_ids(flt):
    """Ids of the failed requests the filter matches (what a bulk retry retries)."""
    if flt.status and flt.status != FAILED:
        return []
    where = [*flt.conditions(), R.status == FAILED]
    return db.session.scalars(select(R.id).where(*where).order_by(R.id)).all()


def count_failed(flt, cap=COUNT_CAP):
    if flt.status and flt.status != FAILED:
        return 0
    return capped_count([*flt.conditions(), R.status == FAILED], cap)


# The export's columns, in CSV order: (header, column). Plain columns, not ORM objects:
# building 200,000 TestimonialRequest instances (and a datetime object per timestamp cell)
# made a full export take half a minute; rows of plain values take a few seconds.
EXPORT_COLUMNS = (
    ("request_id", R.id),
    ("campaign_id", R.campaign_id),
    ("campaign", Campaign.name),
    ("order_id", R.order_id),
    ("item_id", R.item_id),
    ("product_id", R.product_id),
    ("sku", R.sku),
    ("product_title", R.product_title),
    ("customer_first_name", R.customer_first_name),
    ("customer_last_name", R.customer_last_name),
    ("customer_email", R.customer_email),
    ("customer_phone", R.customer_phone),
    ("channel", R.channel),
    ("status", R.status),
    ("created_at", R.created_at),
    ("sent_at", R.sent_at),
    ("last_sent_at", R.last_sent_at),
    ("next_send_at", R.next_send_at),
    ("next_slot", case((R.next_send_at.is_not(None), R.next_slot))),  # only while a send is planned
    ("reminders_sent", R.reminder_count),
    ("resend_count", R.resend_count),
    ("clicked_at", R.clicked_at),
    ("submitted_at", R.submitted_at),
    ("expires_at", R.expires_at),
    ("cancelled_at", R.cancelled_at),
    ("last_event_at", R.last_event_at),
)
# Last, the standing failures as the technical line, built from their stored fields.
EXPORT_HEADER = (*(name for name, _ in EXPORT_COLUMNS), "last_error")
# Table aliases, not ORM ones: an ORM alias made at import would configure every mapper
# before the app has imported all the models.
EMAIL_FAILURE = TestimonialRequestEvent.__table__.alias("email_failure")
SMS_FAILURE = TestimonialRequestEvent.__table__.alias("sms_failure")


def _failure_columns(E):
    c = E.c
    return (c.channel, c.provider, c.error_code, c.retryable, c.detail, c.error_kind, c.dedupe_key.is_not(None))


FAILURE_FIELDS = len(_failure_columns(EMAIL_FAILURE))


def _failure_of(values):
    channel, provider, code, retryable, message, kind, reported = values
    if channel is None:
        return None
    return Failure(channel, provider, code, bool(retryable), message or "", kind or UNKNOWN, bool(reported))


def export_row(row):
    """One exported row: the plain columns, then ``last_error`` from the failure fields."""
    plain = len(EXPORT_COLUMNS)
    failures = [_failure_of(row[start : start + FAILURE_FIELDS]) for start in (plain, plain + FAILURE_FIELDS)]
    return [*row[:plain], describe_failures([f for f in failures if f is not None])]


def utc_text(column, dialect):
    """A UTC timestamp column as ISO 8601 text (``2026-11-20T12:00:00Z``), formatted by the
    database: the columns hold naive UTC, and the database's formatter is far cheaper than
    a datetime object per cell."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%dT%H:%M:%SZ", column)
    return func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')


def _export_select(dialect):
    return select(
        *(
            utc_text(column, dialect) if isinstance(getattr(column, "type", None), UTCDateTime) else column
            for _, column in EXPORT_COLUMNS
        ),
        *_failure_columns(EMAIL_FAILURE),
        *_failure_columns(SMS_FAILURE),
    )


def export_chunks(flt, chunk=None):
    """Every request the filter matches, newest first, as lists of rows of plain values in
    ``EXPORT_HEADER`` order (None for empty cells).

    Keyset chunks (``id < last``), never ``OFFSET``: each chunk is an index range, however
    deep the export. The caller ends the read transaction between chunks (the export is
    streamed to a client that may be slow, and an open SQLite transaction here holds the
    write lock); a request changed meanwhile shows as it was when its chunk was read.
    """
    chunk = chunk or EXPORT_CHUNK
    query = (
        _export_select(db.session.get_bind().dialect.name)
        .outerjoin(Campaign, Campaign.id == R.campaign_id)
        .outerjoin(EMAIL_FAILURE, EMAIL_FAILURE.c.id == R.email_failure_id)
        .outerjoin(SMS_FAILURE, SMS_FAILURE.c.id == R.sms_failure_id)
        .where(*flt.conditions())
        .order_by(R.id.desc())
        .limit(chunk)
    )
    last_id = None
    while True:
        # Core rows straight from the connection: no ORM result machinery per row.
        rows = db.session.connection().execute(query if last_id is None else query.where(R.id < last_id)).all()
        if not rows:
            return
        yield [export_row(row) for row in rows]
        if len(rows) < chunk:
            return
        last_id = rows[-1][0]


def campaign_names():
    return dict(db.session.execute(select(Campaign.id, Campaign.name).order_by(Campaign.name)).all())


def request_events(request_id):
    return db.session.scalars(
        select(TestimonialRequestEvent)
        .where(TestimonialRequestEvent.request_id == request_id)
        .order_by(TestimonialRequestEvent.occurred_at, TestimonialRequestEvent.id)
    ).all()


def request_slot_sends(request_id):
    return db.session.scalars(
        select(SlotSend).where(SlotSend.request_id == request_id).order_by(SlotSend.slot, SlotSend.resend, SlotSend.id)
    ).all()


def campaign_statuses():
    return dict(db.session.execute(select(Campaign.id, Campaign.status)).all())


# Events the log's reason column reads, for the rows of one page.
NOTE_EVENTS = ("failed", "contact_changed", "cancelled")


def row_notes(rows):
    """For a page of requests: ``{id: (event types in order, last cancel reason, standing
    failures)}`` for the rows that have a failure or were cancelled (one query for the
    whole page); the failures are ``Failure`` data, email first."""
    ids = [r.id for r in rows if r.has_failure or r.status == CANCELLED]
    if not ids:
        return {}
    standing = {r.id: (r.email_failure_id, r.sms_failure_id) for r in rows if r.has_failure}
    E = TestimonialRequestEvent
    found = db.session.scalars(
        select(E).where(E.request_id.in_(ids), E.type.in_(NOTE_EVENTS)).order_by(E.request_id, E.occurred_at, E.id)
    ).all()
    notes, by_id = {}, {}
    for event in found:
        types, cancel, failures = notes.get(event.request_id, ([], None, []))
        types.append(event.type)
        notes[event.request_id] = (types, event.detail if event.type == "cancelled" else cancel, failures)
        by_id[event.id] = event
    for request_id, pointers in standing.items():
        notes.setdefault(request_id, ([], None, []))[2].extend(by_id[i].failure for i in pointers if i in by_id)
    return notes
