"""The ``daily_stats`` rollup recomputed from the rows it summarises.

Migration 0005's triggers keep ``daily_stats`` exact on every write. This module computes
the same counts with a GROUP BY over ``testimonial_requests`` and ``slot_sends``:
``flask stats check`` compares the two (and that the triggers are in place), ``flask stats
rebuild`` replaces the table's content with the recomputation.

A future migration that rebuilds ``testimonial_requests`` or ``slot_sends`` through
SQLite's batch mode (copy, drop, rename) drops their triggers with the old table: it must
create them again, and the test that lists the triggers after ``flask db upgrade`` fails
until it does.
"""

from datetime import date

from sqlalchemy import case, delete, func, insert, literal, select, text

from app.extensions import db
from app.lifecycle.models import SlotSend, TestimonialRequest
from app.monitoring.models import DailyStat

SQLITE_TRIGGERS = {
    f"daily_stats_{table}_{event}" for table in ("requests", "sends") for event in ("insert", "update", "delete")
}
POSTGRESQL_TRIGGERS = SQLITE_TRIGGERS  # the same names: one statement trigger per table and event
KEY_COLUMNS = ("day", "campaign_id", "measure", "status", "provider", "channel")


def _counted_selects():
    """One SELECT per measure, in daily_stats' column order (KEY_COLUMNS + n)."""
    r, s = TestimonialRequest, SlotSend
    sent_day = func.date(r.sent_at)

    def per_request(measure, day, status, *where):
        return (
            select(day, r.campaign_id, literal(measure), status, literal(""), literal(""), func.count())
            .where(*where)
            .group_by(day, r.campaign_id, status)
        )

    measure = case((s.slot > 0, literal("reminder")), else_=literal("send"))
    finished_day, campaign, provider = (
        func.date(s.finished_at),
        func.coalesce(r.campaign_id, 0),
        func.coalesce(s.provider, ""),
    )
    return [
        per_request("created", func.date(r.created_at), r.status),
        per_request("first_sent", sent_day, literal(""), r.sent_at.is_not(None)),
        per_request("first_sent_clicked", sent_day, literal(""), r.sent_at.is_not(None), r.clicked_at.is_not(None)),
        per_request("first_sent_submitted", sent_day, literal(""), r.sent_at.is_not(None), r.submitted_at.is_not(None)),
        select(finished_day, campaign, measure, s.status, provider, s.channel, func.count())
        .select_from(s)
        .outerjoin(r, r.id == s.request_id)
        .where(s.status.in_((SlotSend.SENT, SlotSend.FAILED)), s.finished_at.is_not(None))
        .group_by(finished_day, campaign, measure, s.status, provider, s.channel),
    ]


def as_date(value):
    """SQLite's date() gives text, PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _as_counts(rows):
    counts = {}
    for *key, n in rows:
        key = (as_date(key[0]), *key[1:])
        counts[key] = counts.get(key, 0) + n
    return {key: n for key, n in counts.items() if n}


def computed_counts():
    """{(day, campaign_id, measure, status, provider, channel): n} from the base tables."""
    return _as_counts(row for query in _counted_selects() for row in db.session.execute(query))


def stored_counts():
    columns = [getattr(DailyStat, c) for c in KEY_COLUMNS]
    return _as_counts(db.session.execute(select(*columns, DailyStat.n)))


def drift():
    """[(key, stored, computed)] wherever daily_stats and the base tables disagree."""
    stored, computed = stored_counts(), computed_counts()
    return [
        (key, stored.get(key, 0), computed.get(key, 0))
        for key in sorted(stored.keys() | computed.keys(), key=str)
        if stored.get(key, 0) != computed.get(key, 0)
    ]


def installed_triggers():
    if db.engine.dialect.name == "postgresql":
        query = text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'daily_stats_%'")
    else:
        query = text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'daily_stats_%'")
    return set(db.session.scalars(query))


def missing_triggers():
    expected = POSTGRESQL_TRIGGERS if db.engine.dialect.name == "postgresql" else SQLITE_TRIGGERS
    return sorted(expected - installed_triggers())


def rebuild():
    """Replace daily_stats' content by the recomputation (the caller commits)."""
    db.session.execute(delete(DailyStat))
    columns = [*KEY_COLUMNS, "n"]
    for query in _counted_selects():
        db.session.execute(insert(DailyStat).from_select(columns, query))
    db.session.execute(delete(DailyStat).where(DailyStat.n == 0))
