"""The request state machine: the statuses, the allowed moves, and the one function that
makes a move.

    scheduled → queued → sent → clicked → submitted
    terminal alternatives: failed, expired, cancelled (failed can be retried by a person)

A move is a conditional ``UPDATE … WHERE id = :id AND status = :expected``; the row count
says whether we won, so two workers can never both make the same move.
"""

from types import SimpleNamespace

from sqlalchemy import or_, select, update

from app.bulk import insert_rows, update_rows
from app.clock import utcnow
from app.extensions import db
from app.lifecycle.models import TestimonialRequest, TestimonialRequestEvent

SCHEDULED, QUEUED, SENT, CLICKED, SUBMITTED = "scheduled", "queued", "sent", "clicked", "submitted"
FAILED, EXPIRED, CANCELLED = "failed", "expired", "cancelled"

STATUSES = (SCHEDULED, QUEUED, SENT, CLICKED, SUBMITTED, FAILED, EXPIRED, CANCELLED)
TERMINAL = frozenset({SUBMITTED, EXPIRED, CANCELLED})
# Statuses in which a request may still have a slot to send.
SENDABLE = (SCHEDULED, SENT, CLICKED)
CANCELLABLE = (SCHEDULED, QUEUED, SENT, CLICKED, FAILED)
# Statuses in which the customer's link still accepts a submission.
OPEN_FOR_SUBMISSION = (SCHEDULED, QUEUED, SENT, CLICKED, FAILED)
# The names above for templates (the ``request_statuses`` global): r.status == request_statuses.FAILED.
TEMPLATE_NAMES = SimpleNamespace(
    **{status.upper(): status for status in STATUSES},
    TERMINAL=TERMINAL,
    SENDABLE=SENDABLE,
    CANCELLABLE=CANCELLABLE,
    OPEN_FOR_SUBMISSION=OPEN_FOR_SUBMISSION,
)

TRANSITIONS = {
    SCHEDULED: {QUEUED, CANCELLED, FAILED, SUBMITTED},
    # queued → scheduled: the initial send failed and will be retried later.
    QUEUED: {SENT, CLICKED, SCHEDULED, FAILED, CANCELLED, SUBMITTED},
    # sent → sent / clicked → clicked: a reminder slot was claimed or finished.
    SENT: {SENT, CLICKED, SUBMITTED, FAILED, EXPIRED, CANCELLED},
    CLICKED: {CLICKED, SUBMITTED, FAILED, EXPIRED, CANCELLED},
    # failed → scheduled/sent/clicked: a person pressed Retry.
    FAILED: {SCHEDULED, SENT, CLICKED, SUBMITTED, EXPIRED, CANCELLED},
    SUBMITTED: set(),
    EXPIRED: set(),
    CANCELLED: set(),
}


class TransitionError(Exception):
    """A move the state machine does not allow, or one another worker made first."""


def can_move(current, target):
    return target in TRANSITIONS.get(current, set())


def transition(request_id, expected, target, *, where=(), **values):
    """Move a request from ``expected`` to ``target`` and set ``values`` in one statement.

    ``expected`` may be a status or a tuple of statuses. Returns True when this call made
    the move; False when the row was no longer in an expected status (someone else
    moved it first). Raises TransitionError for a move the table does not allow.
    """
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    for status in expected:
        if not can_move(status, target):
            raise TransitionError(f"a request cannot move from {status} to {target}")
    result = db.session.execute(
        update(TestimonialRequest)
        .where(TestimonialRequest.id == request_id, TestimonialRequest.status.in_(expected), *where)
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def add_event(request_id, type_, occurred_at, *, known_clean=False, **fields):
    """Append an event to a request's stream (flushes, never commits).

    Also keeps the request's two summaries of its stream: ``last_event_at`` and each
    channel's standing failure (``email_failure_id``, ``sms_failure_id``; see
    ``channel_failures``). Every send result, delivery failure and retry is an event, so
    this is the one place those are written.
    ``known_clean``: the caller read in this transaction that no failure stands on the
    request, and the event is a success: there is nothing to recompute.
    """
    event = TestimonialRequestEvent(request_id=request_id, type=type_, occurred_at=occurred_at, **fields)
    db.session.add(event)
    db.session.execute(
        update(TestimonialRequest)
        .where(
            TestimonialRequest.id == request_id,
            # Provider events arrive late and out of order: keep the latest time.
            or_(TestimonialRequest.last_event_at.is_(None), TestimonialRequest.last_event_at < occurred_at),
        )
        .values(last_event_at=occurred_at)
        .execution_options(synchronize_session=False)
    )
    if type_ in ERROR_EVENTS and not (known_clean and type_ != "failed"):
        refresh_failures(request_id)
    return event


def transition_each(moves, *, where=()):
    """Many moves at once: ``moves`` are dicts with ``id``, ``expected`` (one status),
    ``target`` and the same other columns each. The rows still in their expected status
    (and matching ``where``) are locked, then moved by one statement run per move
    (executemany); returns the ids moved. A row someone else moved first is left as it was."""
    if not moves:
        return set()
    for move in moves:
        if not can_move(move["expected"], move["target"]):
            raise TransitionError(f"a request cannot move from {move['expected']} to {move['target']}")
    table = TestimonialRequest.__table__
    connection = db.session.connection()
    expected = {move["id"]: move["expected"] for move in moves}
    # Read and locked in this transaction (FOR UPDATE on PostgreSQL; SQLite's write lock is
    # already held), so each of these rows is moved by the statement below and no other.
    current = connection.execute(
        select(table.c.id, table.c.status).where(table.c.id.in_(expected), *where).with_for_update()
    ).all()
    movable = {request_id for request_id, status in current if status == expected[request_id]}
    if not movable:
        return movable
    update_rows(
        connection,
        table,
        ["id"],
        [
            {"status": move["target"], **{k: v for k, v in move.items() if k not in ("expected", "target")}}
            for move in moves
            if move["id"] in movable
        ],
    )
    return movable


def add_events(events):
    """Append many events at once (dicts of event fields), as ``add_event`` does one:
    one insert, one ``last_event_at`` update per time, the standing failures recomputed for the
    requests with a failure standing or a failure among the new events (flushes)."""
    if not events:
        return
    connection = db.session.connection()
    blank = dict.fromkeys(("channel", "slot", "provider", "provider_message_id", "error_code", "detail", "dedupe_key"))
    created_at = utcnow()
    rows = [{**blank, "created_at": created_at, **e} for e in events]
    names = set().union(*rows)  # one INSERT needs the same columns in every row
    insert_rows(connection, TestimonialRequestEvent.__table__, [dict.fromkeys(names) | row for row in rows])
    table = TestimonialRequest.__table__
    by_time = {}
    for e in events:
        by_time.setdefault(e["occurred_at"], set()).add(e["request_id"])
    for occurred_at, ids in by_time.items():
        connection.execute(
            update(table)
            .where(table.c.id.in_(ids), or_(table.c.last_event_at.is_(None), table.c.last_event_at < occurred_at))
            .values(last_event_at=occurred_at)
        )
    touched = {e["request_id"] for e in events if e["type"] in ERROR_EVENTS}
    failing = {e["request_id"] for e in events if e["type"] == "failed"}
    standing = (
        set(
            connection.execute(
                select(table.c.id).where(
                    table.c.id.in_(touched),
                    or_(table.c.email_failure_id.is_not(None), table.c.sms_failure_id.is_not(None)),
                )
            ).scalars()
        )
        if touched
        else set()
    )
    for request_id in sorted(standing | failing):
        refresh_failures(request_id)


# -- each channel's current failure ----------------------------------------------------------

ERROR_EVENTS = frozenset({"sent", "failed", "retried"})
CHANNEL_ORDER = ("email", "sms")


def channel_failures(events):
    """Each channel's current failure, from a request's events: ``{channel: failed event}``.

    Walking the events in time order, a channel's failure (a refused send, a delivery
    failure the provider reported, an interrupted send) stands until that channel is sent
    again (our own ``sent``: a provider's "processed" or "sent" confirmation clears
    nothing) or a person presses Retry (``retried`` clears every channel). So on a
    "both" request an e-mail failure is never hidden behind the SMS one, and a later SMS
    success leaves it standing.

    A provider's failure report is about a message we handed over: it counts from no
    earlier than that hand-over (provider clocks are coarse), and reports at the same
    moment are ordered by their provider key, so the result does not depend on the order
    in which webhooks arrived.
    """
    handed_over = {
        (e.channel, e.provider_message_id): e.occurred_at
        for e in events
        if e.type == "sent" and e.dedupe_key is None and e.provider_message_id
    }

    def when(e):
        if e.dedupe_key is None:
            return (e.occurred_at, 0, "", e.id or 0)
        at = max(e.occurred_at, handed_over.get((e.channel, e.provider_message_id), e.occurred_at))
        return (at, 1, e.dedupe_key, e.id or 0)

    current = {}
    for e in sorted((e for e in events if e.type in ERROR_EVENTS), key=when):
        if e.type == "retried":
            current.clear()
        elif e.channel is None:
            continue  # the request-level summary ("request failed: …") of channel failures
        elif e.type == "failed":
            current[e.channel] = e
        elif e.dedupe_key is None:
            current.pop(e.channel, None)
    return {channel: current[channel] for channel in sorted(current, key=_channel_rank)}


def _channel_rank(channel):
    return CHANNEL_ORDER.index(channel) if channel in CHANNEL_ORDER else len(CHANNEL_ORDER)


def refresh_failures(request_id):
    """Recompute each channel's standing failure from the request's events (flushes, never
    commits)."""
    # Lock the request row first (PostgreSQL; SQLite's transactions are already serial), so
    # a concurrent event on the same request waits and then reads this one's event too.
    # FOR NO KEY UPDATE, not FOR UPDATE: inserting the event took a KEY SHARE lock on the row
    # (its foreign key), which FOR UPDATE conflicts with, so two events at once deadlocked.
    db.session.execute(
        select(TestimonialRequest.id).where(TestimonialRequest.id == request_id).with_for_update(key_share=True)
    )
    events = db.session.scalars(
        select(TestimonialRequestEvent).where(
            TestimonialRequestEvent.request_id == request_id, TestimonialRequestEvent.type.in_(ERROR_EVENTS)
        )
    ).all()
    standing = channel_failures(events)
    db.session.execute(
        update(TestimonialRequest)
        .where(TestimonialRequest.id == request_id)
        .values(
            email_failure_id=standing["email"].id if "email" in standing else None,
            sms_failure_id=standing["sms"].id if "sms" in standing else None,
        )
        .execution_options(synchronize_session=False)
    )
