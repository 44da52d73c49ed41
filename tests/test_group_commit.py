"""``app.group_commit.write_together``: the writes of threads that wait for the write lock
at the same time share one transaction, and each thread still gets its own result or
error. On the app's real SQLite database, with real threads."""

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.group_commit import _group, write_together
from app.intake.models import OrderEvent

_events = OrderEvent.__table__
AT = datetime(2026, 11, 20, tzinfo=UTC)


def an_event(event_id):
    """A work: write one order_events row; returns its id."""

    def work(connection):
        values = dict(
            source="generic",
            event_id=event_id,
            event_type="order.delivered",
            order_id="o1",
            payload="{}",
            occurred_at=AT,
            received_at=AT,
        )
        return connection.execute(insert(_events).returning(_events.c.id), values).scalar_one()

    return work


def written():
    db.session.rollback()
    return set(db.session.scalars(select(OrderEvent.event_id)))


class Writers:
    """The first writer holds the lock (its work waits for ``release``) while the others
    queue behind it; the test then lets it finish and the rest write."""

    def __init__(self, engine, first, others):
        self.engine, self.started, self.release = engine, threading.Event(), threading.Event()
        self.results, self.errors = {}, {}

        def held(connection):
            self.started.set()
            assert self.release.wait(30)
            return first(connection)

        self.threads = [threading.Thread(target=self.run, args=("first", held))]
        self.threads += [threading.Thread(target=self.run, args=(name, work)) for name, work in others.items()]

    def run(self, name, work):
        try:
            self.results[name] = write_together(self.engine, work)
        except Exception as exc:  # noqa: BLE001 - the test reads it
            self.errors[name] = exc

    def go(self):
        group = _group(self.engine)
        self.threads[0].start()
        assert self.started.wait(30)  # the first writer holds the lock, its own work alone taken
        for thread in self.threads[1:]:
            thread.start()
        while len(group.waiting) < len(self.threads) - 1:  # all queued behind the first
            time.sleep(0.001)
        self.release.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self.threads)
        return self


@pytest.fixture
def transactions(app):
    """The write transactions begun on the app's engine (SQLite: BEGIN IMMEDIATE)."""
    begun = []

    def seen(_conn, _cursor, statement, *_):
        if statement.startswith("BEGIN IMMEDIATE"):
            begun.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    yield begun
    event.remove(db.engine, "before_cursor_execute", seen)


def test_threads_waiting_for_the_lock_write_in_one_transaction_each_with_its_own_result(app, transactions):
    others = {f"w{n}": an_event(f"evt_{n}") for n in range(5)}

    writers = Writers(db.engine, an_event("evt_first"), others).go()

    assert writers.errors == {}
    assert transactions == ["BEGIN IMMEDIATE"] * 2  # the first writer's, then the five others' together
    assert written() == {"evt_first", *(f"evt_{n}" for n in range(5))}
    ids = dict(db.session.execute(select(OrderEvent.event_id, OrderEvent.id)).all())
    assert writers.results == {"first": ids["evt_first"], **{f"w{n}": ids[f"evt_{n}"] for n in range(5)}}


def test_a_constraint_error_undoes_only_its_own_work_and_is_raised_in_its_own_thread(app, transactions):
    others = {"a": an_event("evt_a"), "again": an_event("evt_a"), "b": an_event("evt_b")}

    writers = Writers(db.engine, an_event("evt_first"), others).go()

    assert set(writers.errors) == {"again"} and isinstance(writers.errors["again"], IntegrityError)
    assert set(writers.results) == {"first", "a", "b"}
    assert len(transactions) == 2
    assert written() == {"evt_first", "evt_a", "evt_b"}


def test_any_other_error_undoes_the_whole_transaction_and_every_thread_in_it_hears_of_it(app):
    def broken(connection):
        an_event("evt_broken")(connection)
        raise RuntimeError("the disk is gone")

    others = {"a": an_event("evt_a"), "broken": broken, "b": an_event("evt_b")}

    writers = Writers(db.engine, an_event("evt_first"), others).go()

    assert set(writers.errors) == {"a", "broken", "b"}
    assert all(str(error) == "the disk is gone" for error in writers.errors.values())
    assert written() == {"evt_first"}  # the first writer's transaction was its own


def test_a_lone_writer_writes_at_once(app, transactions):
    assert write_together(db.engine, an_event("evt_alone")) > 0
    assert transactions == ["BEGIN IMMEDIATE"] and written() == {"evt_alone"}


def test_work_queued_while_the_lock_is_awaited_joins_the_transaction_that_gets_it(app, transactions):
    """Another connection (a ``sqlite3`` shell, another program) holds the lock: the
    thread that waits for it writes, once it has it, everything queued meanwhile."""
    import sqlite3

    other = sqlite3.connect(db.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    engine = db.engine
    group, results = _group(engine), {}

    def run(name):
        try:
            results[name] = write_together(engine, an_event(f"evt_{name}"))
        except Exception as exc:  # noqa: BLE001 - the test reads it
            results[name] = exc

    threads = [threading.Thread(target=run, args=(name,)) for name in "abc"]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while not (group.writing and len(group.waiting) == 3):  # one waits for the lock, two behind it
        assert time.monotonic() < deadline and all(t.is_alive() for t in threads), results
        time.sleep(0.001)
    other.execute("COMMIT")
    other.close()
    for thread in threads:
        thread.join(30)

    assert sorted(results) == ["a", "b", "c"] and all(results.values())
    assert transactions == ["BEGIN IMMEDIATE"]
    assert written() == {"evt_a", "evt_b", "evt_c"}
