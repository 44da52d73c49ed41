"""daily_stats on PostgreSQL: two connections changing requests of the same day and campaign
at once do not wait for each other's commit on the shared counter row (migration 0014 splits
each counter over 8 rows, one per shard of connections), and the counts stay exact."""

import pytest
from sqlalchemy import text

from app.extensions import db
from app.monitoring import rollup
from tests.factories import campaign
from tests.monitoring.test_daily_stats import T0, assert_counts_exact, post_order, request_of, stat

SHARDS = 8


def shard_of(connection):
    shard = connection.execute(text(f"SELECT pg_backend_pid() % {SHARDS}")).scalar()
    connection.rollback()
    return shard


def connections_of_two_shards(engine):
    """Two connections whose backends fall in different shards (pid % 8)."""
    opened = [engine.connect()]
    first = shard_of(opened[0])
    for _ in range(50):
        other = engine.connect()
        if shard_of(other) != first:
            for extra in opened[1:]:
                extra.close()
            return opened[0], other
        opened.append(other)
    pytest.fail("50 connections all fell in one shard")


@pytest.fixture
def two_requests(app, client, clock):
    clock.set(T0)
    campaign(clock, name="Both", delay_days=2, channel="email")
    post_order(client, clock, 1, "ada@example.com")
    post_order(client, clock, 2, "bob@example.com")
    ids = [request_of("2001").id, request_of("2002").id]
    db.session.commit()
    return ids


def test_two_writers_of_one_counter_do_not_wait_for_each_other(app, two_requests):
    assert stat(T0.date(), "created", "scheduled") == 2
    first_id, second_id = two_requests
    a, b = connections_of_two_shards(db.engine)
    try:
        with a.begin():
            # a moves one request from "scheduled" to "cancelled" and holds its transaction open
            a.execute(text("UPDATE testimonial_requests SET status = 'cancelled' WHERE id = :id"), {"id": first_id})
            with b.begin():
                # Without the shards b needs the counter rows a has locked: it would wait for
                # a's commit, and the lock timeout would fail it.
                b.execute(text("SET LOCAL lock_timeout = '2s'"))
                b.execute(
                    text("UPDATE testimonial_requests SET status = 'cancelled' WHERE id = :id"), {"id": second_id}
                )
    finally:
        a.close()
        b.close()
    db.session.rollback()
    assert stat(T0.date(), "created", "scheduled") == 0
    assert stat(T0.date(), "created", "cancelled") == 2
    assert_counts_exact()


def test_a_counter_split_over_shards_reads_as_one(app, two_requests):
    db.session.execute(text("UPDATE daily_stats SET shard = 3 WHERE measure = 'created'"))
    db.session.execute(
        text(
            "INSERT INTO daily_stats (shard, day, campaign_id, measure, status, provider, channel, n) "
            "SELECT 5, day, campaign_id, measure, status, provider, channel, 1 FROM daily_stats "
            "WHERE measure = 'created'"
        )
    )
    db.session.execute(text("UPDATE daily_stats SET n = n - 1 WHERE shard = 3 AND measure = 'created'"))
    db.session.commit()
    assert db.session.scalar(text("SELECT count(*) FROM daily_stats WHERE measure = 'created'")) == 2
    assert stat(T0.date(), "created", "scheduled") == 2
    assert_counts_exact()
    rollup.rebuild()
    db.session.commit()
    assert db.session.scalar(text("SELECT count(*) FROM daily_stats WHERE measure = 'created'")) == 1
    assert_counts_exact()
