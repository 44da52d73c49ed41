"""Monitoring: daily_stats, the home page's per-day counts, kept by triggers

The home page used to GROUP BY a period's requests and slot sends on every load (about
half a second at 200,000 requests). ``daily_stats`` holds those counts per UTC day,
campaign and measure; triggers on ``testimonial_requests`` and ``slot_sends`` keep it
exact on every write (ORM or Core, any code path), and the upgrade fills it from the rows
already there. ``app.monitoring.rollup.rebuild_daily_stats`` recomputes it the same way.

SQLite: row triggers with UPSERT (SQLite 3.24+). PostgreSQL: statement triggers over the
transition tables, one netted UPSERT per statement in key order (concurrent writers take
the counter rows' locks in the same order).

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEY = "day, campaign_id, measure, status, provider, channel"


def request_measures(row, day):
    """(measure, day, status, condition) counted for one testimonial_requests row."""
    return [
        ("created", day(f"{row}.created_at"), f"{row}.status", "1 = 1"),
        ("first_sent", day(f"{row}.sent_at"), "''", f"{row}.sent_at IS NOT NULL"),
        (
            "first_sent_clicked",
            day(f"{row}.sent_at"),
            "''",
            f"{row}.sent_at IS NOT NULL AND {row}.clicked_at IS NOT NULL",
        ),
        (
            "first_sent_submitted",
            day(f"{row}.sent_at"),
            "''",
            f"{row}.sent_at IS NOT NULL AND {row}.submitted_at IS NOT NULL",
        ),
    ]


def send_measure(row, day):
    """(measure, day, status, provider, channel, condition) for one slot_sends row."""
    return (
        f"CASE WHEN {row}.slot > 0 THEN 'reminder' ELSE 'send' END",
        day(f"{row}.finished_at"),
        f"{row}.status",
        f"COALESCE({row}.provider, '')",
        f"{row}.channel",
        f"{row}.status IN ('sent', 'failed') AND {row}.finished_at IS NOT NULL",
    )


# -- SQLite: row triggers ----------------------------------------------------------------


def sqlite_day(column):
    return f"date({column})"


def sqlite_bump(day, campaign, measure, status, provider, channel, delta, condition):
    return (
        f"INSERT INTO daily_stats ({KEY}, n) "
        f"SELECT {day}, {campaign}, {measure}, {status}, {provider}, {channel}, {delta} WHERE {condition} "
        f"ON CONFLICT ({KEY}) DO UPDATE SET n = n + excluded.n;"
    )


def sqlite_request_bumps(row, delta):
    return [
        sqlite_bump(day, f"{row}.campaign_id", f"'{measure}'", status, "''", "''", delta, condition)
        for measure, day, status, condition in request_measures(row, sqlite_day)
    ]


def sqlite_send_bumps(row, delta):
    measure, day, status, provider, channel, condition = send_measure(row, sqlite_day)
    campaign = f"COALESCE((SELECT campaign_id FROM testimonial_requests WHERE id = {row}.request_id), 0)"
    return [sqlite_bump(day, campaign, measure, status, provider, channel, delta, condition)]


def changed(columns):
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


REQUEST_COLUMNS = ["created_at", "campaign_id", "status", "sent_at", "clicked_at", "submitted_at"]
SEND_COLUMNS = ["request_id", "slot", "channel", "status", "provider", "finished_at"]
SQLITE_TRIGGERS = {
    "daily_stats_requests_insert": ("AFTER INSERT ON testimonial_requests", sqlite_request_bumps("NEW", 1)),
    "daily_stats_requests_update": (
        f"AFTER UPDATE OF {', '.join(REQUEST_COLUMNS)} ON testimonial_requests WHEN {changed(REQUEST_COLUMNS)}",
        sqlite_request_bumps("OLD", -1) + sqlite_request_bumps("NEW", 1),
    ),
    "daily_stats_requests_delete": ("AFTER DELETE ON testimonial_requests", sqlite_request_bumps("OLD", -1)),
    "daily_stats_sends_insert": ("AFTER INSERT ON slot_sends", sqlite_send_bumps("NEW", 1)),
    "daily_stats_sends_update": (
        f"AFTER UPDATE OF {', '.join(SEND_COLUMNS)} ON slot_sends WHEN {changed(SEND_COLUMNS)}",
        sqlite_send_bumps("OLD", -1) + sqlite_send_bumps("NEW", 1),
    ),
    "daily_stats_sends_delete": ("AFTER DELETE ON slot_sends", sqlite_send_bumps("OLD", -1)),
}


# -- PostgreSQL: statement triggers over transition tables ------------------------------


def pg_day(column):
    return f"CAST({column} AS DATE)"


def request_deltas(table, delta, day=pg_day):
    return [
        f"SELECT {day} AS day, r.campaign_id, '{measure}' AS measure, {status} AS status, "
        f"'' AS provider, '' AS channel, {delta} AS n FROM {table} AS r WHERE {condition}"
        for measure, day, status, condition in request_measures("r", day)
    ]


def send_deltas(table, delta, day=pg_day):
    measure, day, status, provider, channel, condition = send_measure("s", day)
    return [
        f"SELECT {day} AS day, COALESCE(r.campaign_id, 0) AS campaign_id, {measure} AS measure, "
        f"{status} AS status, {provider} AS provider, {channel} AS channel, {delta} AS n "
        f"FROM {table} AS s LEFT JOIN testimonial_requests AS r ON r.id = s.request_id WHERE {condition}"
    ]


def pg_upsert(deltas):
    return (
        f"INSERT INTO daily_stats AS d ({KEY}, n) SELECT {KEY}, SUM(n) FROM ("
        + " UNION ALL ".join(deltas)
        + f") AS delta GROUP BY {KEY} HAVING SUM(n) <> 0 ORDER BY {KEY} "
        f"ON CONFLICT ({KEY}) DO UPDATE SET n = d.n + excluded.n;"
    )


def pg_function(name, deltas_of):
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {pg_upsert(deltas_of("new_rows", 1))}
    ELSIF TG_OP = 'DELETE' THEN
        {pg_upsert(deltas_of("old_rows", -1))}
    ELSE
        {pg_upsert(deltas_of("old_rows", -1) + deltas_of("new_rows", 1))}
    END IF;
    RETURN NULL;
END $$;
"""


def pg_triggers(table, function):
    return [
        f"CREATE TRIGGER {function}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {function}_update AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {function}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


PG_FUNCTIONS = {
    "testimonial_requests": ("daily_stats_requests", request_deltas),
    "slot_sends": ("daily_stats_sends", send_deltas),
}


def backfill(day):
    """The counts of the rows already there (the same deltas, read from the tables)."""
    deltas = request_deltas("testimonial_requests", 1, day) + send_deltas("slot_sends", 1, day)
    return (
        f"INSERT INTO daily_stats ({KEY}, n) SELECT {KEY}, SUM(n) FROM ("
        + " UNION ALL ".join(deltas)
        + f") AS delta GROUP BY {KEY} HAVING SUM(n) <> 0"
    )


def upgrade():
    op.create_table(
        "daily_stats",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("measure", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=5), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "campaign_id", "measure", "status", "provider", "channel"),
    )
    # The SLO panel's due-send p95 reads only this index.
    op.create_index(
        "ix_slot_sends_due_latency", "slot_sends", ["finished_at", "status", "attempts", "due_at"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        for table, (function, deltas_of) in PG_FUNCTIONS.items():
            op.execute(pg_function(function, deltas_of))
            for statement in pg_triggers(table, function):
                op.execute(statement)
        op.execute(backfill(pg_day))
    else:
        for name, (when, statements) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN\n    " + "\n    ".join(statements) + "\nEND")
        op.execute(backfill(sqlite_day))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table, (function, _) in PG_FUNCTIONS.items():
            for suffix in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {function}_{suffix} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_slot_sends_due_latency", table_name="slot_sends")
    op.drop_table("daily_stats")
