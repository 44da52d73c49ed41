"""Error pages when the database itself is the problem (down, locked, corrupt, missing a
table): the app's own page or JSON, never Werkzeug's bare page or a traceback, and the
original error logged once."""

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from tests.factories import order_body, post_order

TRACEBACK_WORDS = ("Traceback", "sqlalchemy", "OperationalError", "DatabaseError", 'File "')


@pytest.fixture
def app_log(error_records):
    return error_records("app")


def corrupt_database(app):
    """Overwrite the SQLite file with bytes that are not a database."""
    path = db.engine.url.database
    db.session.remove()
    db.engine.dispose()
    with open(path, "wb") as f:
        f.write(b"this is not an SQLite database\n" * 4096)


def assert_app_error_page(response, status=(500, 503)):
    body = response.get_data(as_text=True)
    assert response.status_code in status, (response.status_code, body[:500])
    assert response.mimetype == "text/html"
    assert "<title>" in body and "Internal Server Error" not in body  # not Werkzeug's bare page
    assert not any(word in body for word in TRACEBACK_WORDS), body
    return body


def assert_json_error(response):
    assert response.status_code in (500, 503), response.get_data(as_text=True)
    assert response.is_json and response.get_json()["error"]
    assert not any(word in response.get_data(as_text=True) for word in TRACEBACK_WORDS)


def test_a_dashboard_page_on_a_corrupt_database_answers_the_apps_own_error_page(app, logged_in, app_log):
    corrupt_database(app)
    body = assert_app_error_page(logged_in.get("/"))
    assert "database" in body and "try again" in body
    assert len(app_log) == 1 and app_log[0].exc_info  # the original error, logged once
    assert_app_error_page(logged_in.get("/requests/"))
    assert_app_error_page(logged_in.get("/no-such-page"), status=(404, 500, 503))


def test_a_webhook_on_a_corrupt_database_answers_json(app, client, app_log):
    corrupt_database(app)
    response = post_order(client, order_body())
    assert_json_error(response)
    assert response.status_code == 503 and response.headers["Retry-After"]  # the shop retries later
    assert "try again" in response.get_json()["error"]
    assert len(app_log) == 1


def test_a_webhook_finding_every_database_connection_in_use_answers_503_and_writes_nothing(app_factory, app_log):
    """The pool's connections are all taken (a burst larger than the pool): the webhook
    waits the pool's timeout, then asks the shop to send it again later."""
    from app.intake.models import OrderEvent

    app = app_factory(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2})
    with app.app_context():
        held = db.engine.connect()  # the only connection
        held.exec_driver_sql("SELECT 1")
        response = post_order(app.test_client(), order_body())
        held.close()

        assert response.status_code == 503 and response.headers["Retry-After"], response.get_data(as_text=True)
        assert_json_error(response)
        assert db.session.scalar(select(func.count(OrderEvent.id))) == 0


def test_a_missing_table_breaks_the_page_not_the_error_page(app, logged_in, app_log):
    # A half-migrated database: the home page's daily counts and the nav's failed count are gone.
    db.session.execute(text("DROP TABLE daily_stats"))
    db.session.execute(text("DROP TABLE testimonial_requests"))
    db.session.commit()
    body = assert_app_error_page(logged_in.get("/"))
    assert "Temporarily unavailable" in body and "try again" in body
    assert len(app_log) == 1 and app_log[0].exc_info and "daily_stats" in str(app_log[0].exc_info[1])
    # A 404 on a dashboard URL still renders (its nav counts are left out, not fatal).
    missing = logged_in.get("/campaigns/999999")
    assert missing.status_code in (404, 500, 503) and "Traceback" not in missing.get_data(as_text=True)
