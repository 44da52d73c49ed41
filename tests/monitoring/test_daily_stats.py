"""daily_stats: the home page's per-day counts, kept exact by triggers on every write path
(spec §8: requests scheduled per day, send success and failure rates by provider/channel,
click-through, reminder volume)."""

from datetime import UTC, date, datetime

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text, update

from app.extensions import db
from app.lifecycle.dispatch import dispatch_due
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import cancel_request, record_click, record_submission, resend_request, retry_request
from app.monitoring import metrics, rollup
from tests.factories import campaign, item, order_body

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def assert_counts_exact():
    assert rollup.drift() == []


def post_order(client, clock, n, email, phone=None, items=None):
    body = order_body(
        f"evt_{n}",
        order_id=f"{2000 + n}",
        occurred_at=clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        customer={"email": email, "phone": phone, "first_name": "Ada"},
        items=items or [item(f"li_{n}", "p_1")],
    )
    response = client.post("/webhooks/orders", json=body)
    assert response.status_code == 202, response.get_json()


def request_of(order_id):
    return db.session.scalar(select(TestimonialRequest).where(TestimonialRequest.order_id == order_id))


def stat(day, measure, status="", provider="", channel=""):
    return db.session.scalar(
        select(func.coalesce(func.sum(rollup.DailyStat.n), 0)).where(
            rollup.DailyStat.day == day,
            rollup.DailyStat.measure == measure,
            rollup.DailyStat.status == status,
            rollup.DailyStat.provider == provider,
            rollup.DailyStat.channel == channel,
        )
    )


def test_the_triggers_are_in_place_after_flask_db_upgrade(app):
    assert rollup.installed_triggers() == rollup.SQLITE_TRIGGERS
    assert rollup.missing_triggers() == []


def test_every_step_of_the_lifecycle_keeps_the_counts_exact(app, client, clock):
    """Webhook, sends on both channels, a permanent failure, Retry, a reminder, a click, a
    submission, Resend, cancellation and expiry: after each, the table equals a recount."""
    clock.set(T0)
    campaign(
        clock, name="Both", delay_days=0, channel="both", reminder_delay_days=1, max_reminders=1, expire_after_days=3
    )
    for n, email in ((1, "ada@example.com"), (2, "bob@fail.test"), (3, "cy@example.com"), (4, "dee@example.com")):
        post_order(client, clock, n, email, phone=None if n == 2 else f"+1555000000{n}")  # bob: email only
    assert_counts_exact()
    assert stat(date(2026, 11, 18), "created", "scheduled") == 4

    dispatch_due(clock.advance(minutes=1))
    assert_counts_exact()
    day = date(2026, 11, 18)
    assert stat(day, "send", "failed", "outbox", "email") == 1  # bob@fail.test is refused for good
    assert stat(day, "send", "sent", "outbox", "sms") == 3
    assert stat(day, "created", "failed") == 1 and stat(day, "created", "scheduled") == 0

    bob = request_of("2002")
    db.session.execute(
        update(TestimonialRequest).where(TestimonialRequest.id == bob.id).values(customer_email="bob@example.com")
    )
    retry_request(bob, clock.advance(minutes=5))
    db.session.commit()
    dispatch_due(clock.advance(minutes=1))
    assert_counts_exact()
    assert stat(day, "send", "failed", "outbox", "email") == 0  # retried until it went out: counted once, as sent
    assert stat(day, "send", "sent", "outbox", "email") == 4

    record_click(request_of("2001"), clock.advance(hours=1))
    record_submission(request_of("2001"), clock.advance(minutes=10))
    cancel_request(request_of("2004"), clock(), "order refunded")
    db.session.commit()
    assert_counts_exact()
    assert (stat(day, "first_sent"), stat(day, "first_sent_clicked"), stat(day, "first_sent_submitted")) == (4, 1, 1)

    dispatch_due(clock.advance(days=1))  # reminders for 2002 and 2003
    assert_counts_exact()
    assert stat(date(2026, 11, 19), "reminder", "sent", "outbox", "email") == 2

    resend_request(request_of("2003"), clock.advance(minutes=30))
    db.session.commit()
    dispatch_due(clock.advance(minutes=1))
    assert_counts_exact()

    dispatch_due(clock.advance(days=5))  # past expiry
    assert_counts_exact()
    assert stat(day, "created", "expired") == 2


def test_writes_outside_the_app_are_counted_too(app, client, clock):
    """A manual SQL fix (Core UPDATE / DELETE, no ORM) goes through the triggers as well."""
    clock.set(T0)
    campaign(clock, delay_days=0, channel="email", email_send_window=None)
    post_order(client, clock, 1, "ada@example.com")
    dispatch_due(clock.advance(minutes=1))
    db.session.execute(text("UPDATE slot_sends SET finished_at = '2026-11-17 23:00:00.000000'"))
    db.session.execute(update(TestimonialRequest).values(status="cancelled"))
    assert_counts_exact()
    db.session.execute(text("DELETE FROM slot_sends"))
    assert_counts_exact()
    assert stat(date(2026, 11, 17), "send", "sent", "outbox", "email") == 0


@pytest.fixture
def some_history(app, client, clock):
    """Two days of requests: sent, failed, clicked, reminded."""
    clock.set(T0)
    campaign(clock, delay_days=0, channel="email", reminder_delay_days=1, max_reminders=1, email_send_window=None)
    for n in range(1, 9):
        post_order(client, clock, n, f"c{n}@{'fail.test' if n % 4 == 0 else 'example.com'}")
    dispatch_due(clock.advance(minutes=1))
    record_click(request_of("2001"), clock.advance(hours=2))
    db.session.commit()
    dispatch_due(clock.advance(days=1))
    return app


def test_upgrading_an_existing_database_counts_the_rows_already_there(some_history):
    downgrade(revision="0004")
    upgrade()
    assert rollup.missing_triggers() == []
    assert len(rollup.stored_counts()) >= 8
    assert_counts_exact()


def test_stats_check_finds_a_wrong_count_and_rebuild_mends_it(some_history, runner):
    ok = runner.invoke(args=["stats", "check"])
    assert ok.exit_code == 0 and "matches" in ok.output

    db.session.execute(text("UPDATE daily_stats SET n = n + 5 WHERE measure = 'created'"))
    db.session.commit()
    wrong = runner.invoke(args=["stats", "check", "--json"])
    assert wrong.exit_code == 1
    assert '"measure": "created"' in wrong.output and '"ok": false' in wrong.output

    rebuilt = runner.invoke(args=["stats", "rebuild"])
    assert rebuilt.exit_code == 0 and "daily_stats rebuilt" in rebuilt.output
    assert runner.invoke(args=["stats", "check"]).exit_code == 0


def test_stats_check_names_a_missing_trigger(app, runner):
    db.session.execute(text("DROP TRIGGER daily_stats_sends_update"))
    db.session.commit()
    result = runner.invoke(args=["stats", "check"])
    assert result.exit_code == 1
    assert "missing trigger: daily_stats_sends_update" in result.output


@pytest.mark.parametrize("campaign_filter", [False, True])
def test_home_figures_equal_a_recount_per_campaign(app, client, clock, campaign_filter):
    clock.set(T0)
    first = campaign(clock, name="One", delay_days=0, channel="email", email_send_window=None)
    campaign(clock, name="Two", delay_days=0, channel="email", email_send_window=None)
    for n in range(1, 7):
        post_order(client, clock, n, f"c{n}@{'fail.test' if n % 3 == 0 else 'example.com'}")
    dispatch_due(clock.advance(minutes=1))
    period = metrics.parse_period({"from": "2026-11-18", "to": "2026-11-18"}, clock())
    figures = metrics.period_metrics(period, first.id if campaign_filter else None)
    of_campaign = [TestimonialRequest.campaign_id == first.id] if campaign_filter else []
    expected = db.session.scalar(select(func.count(TestimonialRequest.id)).where(*of_campaign))
    assert figures.scheduled == expected and figures.sent + figures.failed == expected
    assert figures.failed == db.session.scalar(
        select(func.count(TestimonialRequest.id)).where(TestimonialRequest.status == "failed", *of_campaign)
    )
    assert figures.days[0].scheduled == expected and figures.days[0].day == date(2026, 11, 18)
