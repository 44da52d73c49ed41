"""tests/test_prepared.py's checks on PostgreSQL (named driver parameters, casts)."""

from app.extensions import db
from tests.factories import campaign, item, order_body, post_order
from tests.test_prepared import (
    check_later_values_one_per_row,
    check_prepared_statements_match_core,
    check_statements_run_together,
)


def test_prepared_statements_give_what_core_gives(app):
    check_prepared_statements_match_core()


def test_a_prepared_insert_fills_later_values_row_by_row(app):
    check_later_values_one_per_row()


def test_statements_run_together_in_one_pipeline_give_what_each_gives(app):
    check_statements_run_together()


def test_the_intake_statements_stay_prepared_from_one_webhook_to_the_next(app_factory, clock):
    """psycopg prepares a statement on the server at its fifth run on a connection, and
    forgets everything it prepared at each ROLLBACK. The intake's reads ended with one, so
    every webhook's statements were parsed and planned again (about 2.6 ms a webhook)."""
    app = app_factory(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0})  # one connection
    client = app.test_client()
    with app.app_context():
        campaign(clock, delay_days=0)
        for n in range(7):
            customer = {"email": f"c{n}@example.com", "phone": f"+1555000{n:04d}", "first_name": "Ada"}
            body = order_body(
                f"evt_{n}", order_id=f"o{n}", customer=customer, items=[item("a", "p_1"), item("b", "p_2")]
            )
            assert post_order(client, body).status_code == 202
        with db.engine.connect() as connection:  # the webhooks' connection
            prepared = connection.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars().all()
    starts = sorted(" ".join(statement.split()[:3]) for statement in prepared)
    assert starts == [
        "SELECT (SELECT count(order_events.id)",  # the snapshot and the reads (statements.READS_AT_ONCE)
        "SELECT pg_advisory_xact_lock($1::BIGINT) AS",
        "WITH new_event AS",  # the event, its requests and items (app.intake.statements.at_once_text)
    ], starts


def test_a_statement_with_native_placeholders_gives_what_its_named_form_gives(app):
    """``app.prepared.native``: each name becomes one $n however often it appears, and a
    literal %% becomes %; psycopg's RawCursor then runs the text as it is."""
    from app.prepared import AS_RETURNED, Bound, native, rows_together

    named = Bound(
        "SELECT %(a)s::int + %(b)s::int, %(a)s::int * 10, '100%%' AS literal, %(text)s::text",
        {"b": 2, "text": "x", "a": 5},
        AS_RETURNED,
    )
    converted = native(named)
    assert converted.text == "SELECT $1::int + $2::int, $1::int * 10, '100%' AS literal, $3::text"
    assert converted.values == (5, 2, "x")
    connection = db.session.connection()
    assert rows_together(connection, [converted, named]) == [[(7, 50, "100%", "x")]] * 2


def test_the_reads_in_one_statement_give_what_the_four_reads_give(app, client, clock):
    """statements.READS_AT_ONCE (PostgreSQL's read-ahead) against SNAPSHOT and the three
    reads it replaces, on an order with a refund and earlier requests, for a customer with
    an opt-out and an erasure in force."""
    from app.clock import now
    from app.erasure.services import erase
    from app.intake import statements
    from app.intake.schema import parse_order_event
    from app.intake.services import _reads
    from app.optouts.services import suppress
    from app.prepared import native, rows_together

    campaign(clock)
    ada = {"email": "ada@example.com", "phone": "+15551234567", "first_name": "Ada"}
    grace = {"email": "grace@example.com", "first_name": "Grace"}  # the order's earlier customer: kept
    items = [item("a", "p_1"), item("b", "p_2")]
    assert post_order(client, order_body("evt_2", order_id="o2", customer=grace, items=items)).status_code == 202
    refund = order_body("evt_3", order_id="o2", event_type="order.refunded", items=[item("b", "p_2")])
    assert post_order(client, refund).status_code == 202
    suppress("sms", "+15551234567", now(), source="link")
    db.session.commit()
    erase("ada@example.com", now(), by="test")
    db.session.commit()

    event = parse_order_event(order_body("evt_4", order_id="o2", customer=ada, items=items))
    params = statements.parameters(event, "generic")
    dialect = db.engine.dialect
    connection = db.session.connection()
    [[row]] = rows_together(
        connection, [native(statements.READS_AT_ONCE.bind(dialect, statements.reads_at_once_parameters(params)))]
    )
    snapshot, reads = statements.split_reads_at_once(row)
    separate = rows_together(connection, [statements.SNAPSHOT.bind(dialect, params), *_reads(event, params)])

    assert snapshot == tuple(separate[0][0])
    assert reads == [[tuple(r) for r in rows] for rows in separate[1:]]
    assert all(reads), reads  # each read found something
