"""daily_stats on PostgreSQL: 64 shards instead of 8

A webhook's INSERT of its requests adds to the day's ``created`` counter and keeps that
row locked until its commit. With 8 shards (``pg_backend_pid() % 8``) the 16 connections
of two gunicorn workers with 8 threads each share a shard two by two, and each waited for
the other's commit: the INSERT took 1.9 ms on average in bench/webhooks.py, 0.7 ms with 64
shards. A pool's connections are opened together, so their backends' pids follow each
other and fall in different shards as long as there are fewer than 64.

Readers sum the rows of a key whatever their shard, so the rows written under 8 shards
(0 to 7) stay as they are. SQLite: nothing (one writer at a time, shard 0).

Revision ID: 0015
Revises: 0014
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SHARDS = 64


def _migration(filename):
    spec = importlib.util.spec_from_file_location(filename.removesuffix(".py"), Path(__file__).with_name(filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _functions(shards):
    if op.get_bind().dialect.name != "postgresql":
        return
    shards_0014 = _migration("0014_daily_stats_shards.py")
    m = shards_0014._daily_stats_migration()
    for function, deltas_of in m.PG_FUNCTIONS.values():
        op.execute(shards_0014._pg_function(m, function, deltas_of, sharded=True, shards=shards))


def upgrade():
    _functions(SHARDS)


def downgrade():
    # Rows of shards 8 to 63 may stay: readers sum every shard of a key.
    _functions(8)
