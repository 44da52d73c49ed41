"""``app.prepared`` and ``app.bulk.PreparedInsert``: statements made ready once per shape
give what a Core execution gives, on the app's real database (tests/postgres runs the
same checks on PostgreSQL)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, func, insert, literal, literal_column, select
from sqlalchemy.exc import DBAPIError

from app.bulk import PreparedInsert
from app.extensions import db
from app.intake.models import OrderCancellation, OrderEvent
from app.prepared import Prepared, rows_together

_events, _cancellations = OrderEvent.__table__, OrderCancellation.__table__
SINCE = datetime(2026, 11, 1, tzinfo=UTC)

LATEST_OF_ITEMS = (
    select(_cancellations.c.item_id, func.max(_cancellations.c.cancelled_at), literal("constant"))
    .where(
        _cancellations.c.item_id.in_(bindparam("items", expanding=True)),
        _cancellations.c.kind == "refunded",  # a value of the statement itself
        _cancellations.c.cancelled_at >= bindparam("since"),  # a value the driver takes converted
    )
    .group_by(_cancellations.c.item_id)
    .order_by(_cancellations.c.item_id)
)


def an_event():
    values = dict(source="generic", event_id="evt_p", event_type="order.refunded", order_id="o1", payload="{}")
    return db.session.execute(
        insert(_events).returning(_events.c.id), {**values, "received_at": SINCE, "occurred_at": SINCE}
    ).scalar_one()


def cancellations(event_id):
    """Four refunds and a cancellation: items a and b twice (the later one counts), c once
    but before SINCE, d cancelled (not refunded)."""
    rows = [
        dict(source="generic", order_id="o1", kind="refunded", item_id=item, cancelled_at=SINCE + timedelta(days=d))
        for item, d in (("a", 1), ("a", 3), ("b", 2), ("c", -1))
    ] + [dict(source="generic", order_id="o1", kind="cancelled", item_id="d", cancelled_at=SINCE)]
    connection = db.session.connection()
    made = PreparedInsert(
        connection.dialect, _cancellations, rows, ("item_id", "order_event_id"), later=("order_event_id",)
    )
    return made.run(connection, order_event_id=event_id)


def check_prepared_statements_match_core():
    event_id = an_event()
    assert sorted(cancellations(event_id)) == [(item, event_id) for item in "aabcd"]
    statement = Prepared(LATEST_OF_ITEMS)
    connection = db.session.connection()
    for items in ([], ["a"], ["a", "b"], ["a", "b", "c", "d", "e"], ["b"], []):
        params = {"items": items, "since": SINCE}
        core = db.session.execute(LATEST_OF_ITEMS, params).all()
        prepared = statement.rows(connection, params)
        assert [tuple(row) for row in prepared] == [tuple(row) for row in core], items
    # The result types apply: aware UTC datetimes, as the models give them.
    assert statement.rows(connection, {"items": ["a", "b"], "since": SINCE}) == [
        ("a", SINCE + timedelta(days=3), "constant"),
        ("b", SINCE + timedelta(days=2), "constant"),
    ]
    # One text per dialect and list length, made once.
    assert len(statement._shapes) == 4


def check_later_values_one_per_row():
    event_id = an_event()
    rows = [dict(source="generic", order_id="o2", kind="cancelled", cancelled_at=SINCE) for _ in range(3)]
    connection = db.session.connection()
    made = PreparedInsert(connection.dialect, _cancellations, rows, ("item_id",), later=("order_event_id", "item_id"))
    assert sorted(made.run(connection, order_event_id=event_id, item_id=["x", "y", None]), key=str) == sorted(
        [("x",), ("y",), (None,)], key=str
    )
    found = db.session.execute(
        select(_cancellations.c.item_id, _cancellations.c.order_event_id).where(_cancellations.c.order_id == "o2")
    ).all()
    assert sorted(found, key=str) == sorted([("x", event_id), ("y", event_id), (None, event_id)], key=str)


def check_statements_run_together():
    """``rows_together`` gives each statement's rows, in order, as each would alone (on
    PostgreSQL they are sent in one pipeline); a None statement gives None; a failing one
    raises as an execution would, and the rows written before are still there."""
    event_id = an_event()
    cancellations(event_id)
    connection = db.session.connection()
    statement = Prepared(LATEST_OF_ITEMS)
    bounds = [
        statement.bind(connection.dialect, {"items": ["a", "b"], "since": SINCE}),
        None,
        statement.bind(connection.dialect, {"items": ["c", "d"], "since": SINCE - timedelta(days=5)}),
        statement.bind(connection.dialect, {"items": ["z"], "since": SINCE}),
    ]
    alone = [None if bound is None else bound.rows(connection) for bound in bounds]
    assert rows_together(connection, bounds) == alone
    assert alone == [
        [("a", SINCE + timedelta(days=3), "constant"), ("b", SINCE + timedelta(days=2), "constant")],
        None,
        [("c", SINCE - timedelta(days=1), "constant")],
        [],
    ]
    assert rows_together(connection, []) == []
    broken = Prepared(select(literal_column("no_such_column")).select_from(_cancellations)).bind(connection.dialect, {})
    with pytest.raises(DBAPIError):
        rows_together(connection, [bounds[0], broken])


def test_statements_run_together_give_what_each_gives(app):
    check_statements_run_together()


def test_prepared_statements_give_what_core_gives(app):
    check_prepared_statements_match_core()


def test_a_prepared_insert_fills_later_values_row_by_row(app):
    check_later_values_one_per_row()
