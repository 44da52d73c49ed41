"""daily_stats on PostgreSQL: two connections changing requests of the same day and campaign
at once do not wait for each other's commit on the shared counter row (migrations 0014 and
0015 split each counter over 64 rows, one per shard of connections), and the counts stay
exact."""

import pytest
from sqlalchemy import text

from app.extensions import db
from app.monitoring import rollup
from tests.factories import campaign
from tests.monitoring.test_daily_stats import T0, assert_counts_exact, post_order, request_of, stat

SHARDS = 64


def shard_of(connection):
    shard = connection.execute(text(f"SELECT pg_backend_pid() % {SHARDS}")).scalar()
    connection.rollback()
    return shard


def connections_of_two_shards(engine):
    """Two connections whose backends fall in different shards (pid % 64)."""
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


def test_a_writer_adds_to_the_row_of_its_connections_shard_of_64(app, two_requests):
    """The 16 connections of two workers with 8 threads each, opened together, have pids
    that follow each other: with 64 shards they write 16 different rows."""
    first_id, _ = two_requests
    opened = [db.engine.connect() for _ in range(12)]
    # one whose shard of 64 is not its shard of 8 (pid % 64 >= 8)
    connection = next((c for c in opened if shard_of(c) >= 8), None)
    assert connection is not None, "12 connections, all with pid % 64 < 8"
    for other in opened:
        if other is not connection:
            other.close()
    with connection:
        shard = shard_of(connection)
        with connection.begin():
            connection.execute(
                text("UPDATE testimonial_requests SET status = 'cancelled' WHERE id = :id"), {"id": first_id}
            )
        written = connection.execute(
            text("SELECT shard, n FROM daily_stats WHERE measure = 'created' AND status = 'cancelled'")
        ).all()
    assert written == [(shard, 1)]
    db.session.rollback()
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
