"""daily_stats on PostgreSQL: each counter split over 8 rows, so concurrent writers do not queue

On PostgreSQL the statement triggers of migration 0005 add every write's counts to one row
per (day, campaign, measure, status, …) with an UPSERT, and that row stays locked until the
writer commits. Every order webhook of the day bumps the same ``created``/``scheduled``
row and every dispatcher the same ``send``/``sent`` row: several gunicorn workers or
machines took turns at it, each waiting for the other's commit (its fsync included).

Now a counter is the sum of up to 8 rows told apart by ``shard``; a writer adds to the row
of its own connection (``pg_backend_pid() % 8``), so two connections wait for each other
only when they share a shard. Readers already sum: the home page sums daily_stats over
days, and the rollup check adds the rows of one key together. SQLite has one writer at a
time anyway: it gets the column (always 0), its key and triggers stay as they are.

Revision ID: 0014
Revises: 0013
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SHARDS = 8


def _daily_stats_migration():
    """Migration 0005's statement builders (the counted measures are defined there once)."""
    path = Path(__file__).with_name("0005_daily_stats.py")
    spec = importlib.util.spec_from_file_location("daily_stats_0005", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pg_upsert(m, deltas, key, shard):
    return (
        f"INSERT INTO daily_stats AS d ({key}, n) SELECT {shard}{m.KEY}, SUM(n) FROM ("
        + " UNION ALL ".join(deltas)
        + f") AS delta GROUP BY {m.KEY} HAVING SUM(n) <> 0 ORDER BY {m.KEY} "
        f"ON CONFLICT ({key}) DO UPDATE SET n = d.n + excluded.n;"
    )


def _pg_function(m, name, deltas_of, sharded, shards=SHARDS):
    key, shard = (f"shard, {m.KEY}", f"pg_backend_pid() % {shards}, ") if sharded else (m.KEY, "")
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_pg_upsert(m, deltas_of("new_rows", 1), key, shard)}
    ELSIF TG_OP = 'DELETE' THEN
        {_pg_upsert(m, deltas_of("old_rows", -1), key, shard)}
    ELSE
        {_pg_upsert(m, deltas_of("old_rows", -1) + deltas_of("new_rows", 1), key, shard)}
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade():
    # a plain ADD COLUMN (not a batch copy) on SQLite too
    op.execute("ALTER TABLE daily_stats ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0")
    if op.get_bind().dialect.name != "postgresql":
        return
    m = _daily_stats_migration()
    op.execute("ALTER TABLE daily_stats DROP CONSTRAINT daily_stats_pkey")
    op.execute(f"ALTER TABLE daily_stats ADD CONSTRAINT daily_stats_pkey PRIMARY KEY (shard, {m.KEY})")
    for function, deltas_of in m.PG_FUNCTIONS.values():
        op.execute(_pg_function(m, function, deltas_of, sharded=True))


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        op.execute("ALTER TABLE daily_stats DROP COLUMN shard")  # SQLite 3.35+
        return
    m = _daily_stats_migration()
    for function, deltas_of in m.PG_FUNCTIONS.values():
        op.execute(_pg_function(m, function, deltas_of, sharded=False))
    # the shards of a key folded into one row, as 0005 keeps them
    op.execute(
        f"CREATE TEMPORARY TABLE daily_stats_folded AS SELECT {m.KEY}, SUM(n) AS n FROM daily_stats "
        f"GROUP BY {m.KEY} HAVING SUM(n) <> 0"
    )
    op.execute("DELETE FROM daily_stats")
    op.execute("ALTER TABLE daily_stats DROP CONSTRAINT daily_stats_pkey")
    op.execute("ALTER TABLE daily_stats DROP COLUMN shard")
    op.execute(f"ALTER TABLE daily_stats ADD CONSTRAINT daily_stats_pkey PRIMARY KEY ({m.KEY})")
    op.execute(f"INSERT INTO daily_stats ({m.KEY}, n) SELECT {m.KEY}, n FROM daily_stats_folded")
    op.execute("DROP TABLE daily_stats_folded")
