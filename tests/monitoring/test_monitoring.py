"""Monitoring home, SLO decisions and alerts (spec §8, §10)."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.intake.models import OrderEvent
from app.lifecycle.dispatch import TickReport, dispatch_due
from app.lifecycle.heartbeat import record_tick
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import record_click, record_submission
from app.monitoring import metrics, slo
from app.monitoring.alerts import evaluate_alerts
from app.monitoring.chart import bar_chart_svg, nice_ceiling
from app.monitoring.models import Alert
from app.outbox.models import OutboxMessage
from tests.factories import campaign, order_body

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LIMITS = slo.Limits()


def at(**delta):
    return T + timedelta(**delta)


# -- pure SLO decisions -----------------------------------------------------------------


@pytest.mark.parametrize(
    "values, q, expected",
    [
        ([], 0.95, None),
        ([7], 0.95, 7),
        ([3, 1, 2], 0.95, 3),
        (list(range(1, 21)), 0.95, 19),  # ceil(0.95 × 20) = 19th value
        (list(range(1, 101)), 0.95, 95),
        (list(range(1, 102)), 0.95, 96),  # ceil(95.95) = 96
        ([5, 5, 5, 500], 0.5, 5),
    ],
)
def test_percentile_is_nearest_rank(values, q, expected):
    assert slo.percentile(values, q) == expected


@pytest.mark.parametrize("p95_ms, breached", [(None, False), (0.4, False), (10_000, False), (10_001, True)])
def test_creation_breach_above_ten_seconds(p95_ms, breached):
    assert (slo.creation_breach(p95_ms, LIMITS) is not None) is breached


@pytest.mark.parametrize(
    "p95_s, limit, breached",
    [
        (None, 300, False),
        (12, 300, False),
        (300, 300, False),
        (300.5, 300, True),
        (61, 60, True),
    ],
)
def test_due_send_breach_above_the_configured_limit(p95_s, limit, breached):
    limits = slo.Limits(due_send_p95_seconds=limit)
    assert (slo.due_send_breach(p95_s, limits) is not None) is breached


@pytest.mark.parametrize(
    "last_tick, since, now, enabled, breached",
    [
        (at(), None, at(seconds=180), True, False),  # exactly three intervals: still fine
        (at(), None, at(seconds=181), True, True),
        (at(), None, at(hours=5), False, False),  # scheduler disabled: no heartbeat to expect
        (None, None, at(hours=5), True, False),  # nothing to compare against yet
        (None, at(), at(seconds=120), True, False),  # just started, no tick yet
        (None, at(), at(seconds=181), True, True),  # started and never ticked
        (at(seconds=-600), at(), at(seconds=100), True, True),  # the last tick is what counts
    ],
)
def test_heartbeat_breach_after_three_missed_intervals(last_tick, since, now, enabled, breached):
    limits = slo.Limits(scheduler_enabled=enabled, scheduler_interval_seconds=60)
    assert (slo.heartbeat_breach(last_tick, since, now, limits) is not None) is breached


@pytest.mark.parametrize(
    "last_tick, started, now, breached",
    [
        (at(hours=-50), at(), at(seconds=5), False),  # restarted after a weekend: the gap was before the start
        (at(seconds=-170), at(), at(seconds=100), False),  # a slow seed (make run) before the first start
        (at(hours=-50), at(), at(seconds=181), True),  # started, then never ticked for three intervals
        (None, at(), at(seconds=181), True),
        (at(seconds=60), at(), at(seconds=200), False),  # ticking since the start
        (at(seconds=10), at(), at(seconds=200), True),  # ticked once after the start, then stopped
    ],
)
def test_no_heartbeat_breach_for_a_gap_before_the_schedulers_first_start(last_tick, started, now, breached):
    limits = slo.Limits(scheduler_enabled=True, scheduler_interval_seconds=60)
    assert (slo.heartbeat_breach(last_tick, None, now, limits, started) is not None) is breached


def test_make_run_after_a_slow_seed_raises_no_alert(app_factory, clock, error_records):
    """The seed's last recorded tick is minutes old when the server starts: no alert, no
    banner, no email — until the scheduler itself stops ticking."""
    from app.monitoring.alerts import current_breaches
    from app.scheduler import note_scheduler_start

    app = app_factory(SCHEDULER_ENABLED=True, SCHEDULER_INTERVAL_SECONDS=60, ALERT_EMAIL="ops@shop.example")
    errors = error_records("app.monitoring")
    with app.app_context():
        record_tick(at(), at(), TickReport())  # the demo seed's heartbeat, then 160 s of seeding
        note_scheduler_start(app, clock.set(at(seconds=400)))
        assert evaluate_alerts(clock.set(at(seconds=401)))["breaches"] == []
        assert current_breaches(at(seconds=401)) == [] and alert_emails() == [] and errors == []
        record_tick(at(seconds=402), at(seconds=403), TickReport())
        assert evaluate_alerts(clock.set(at(seconds=500)))["breaches"] == []
        # Then the scheduler really stops: that is an alert.
        assert evaluate_alerts(clock.set(at(seconds=402 + 181)))["opened"] == [slo.HEARTBEAT]


@pytest.mark.parametrize(
    "sends, failures, breached",
    [
        (0, 0, False),
        (9, 9, False),  # too few sends to say anything
        (10, 2, False),  # 20 % is the limit, not a breach
        (10, 3, True),
        (100, 21, True),
        (100, 20, False),
    ],
)
def test_failure_rate_breach_needs_ten_sends(sends, failures, breached):
    assert (slo.failure_rate_breach(sends, failures, LIMITS) is not None) is breached


@pytest.mark.parametrize("configured, expected", [(0.2, 0.2), (0.05, 0.05), (20, 0.2), (5, 0.05)])
def test_failure_rate_setting_accepts_a_fraction_or_a_percentage(configured, expected):
    assert slo.Limits.from_config({"ALERT_FAILURE_RATE": configured}).failure_rate == pytest.approx(expected)


def test_breaches_lists_every_breached_slo_in_order():
    obs = slo.Observations(
        creation_p95_ms=12_000,
        due_send_p95_seconds=900,
        sends=10,
        failures=5,
        last_tick_at=at(hours=-1),
        watching_since=at(hours=-2),
    )
    assert [b.kind for b in slo.breaches(obs, LIMITS, at())] == list(slo.KINDS)
    assert slo.breaches(slo.Observations(last_tick_at=at()), LIMITS, at(seconds=30)) == []


def test_breach_messages_are_in_a_merchants_words():
    obs = slo.Observations(
        creation_p95_ms=12_000,
        due_send_p95_seconds=10_800,
        sends=10,
        failures=5,
        last_tick_at=at(hours=-1),
        watching_since=at(hours=-2),
    )
    found = slo.breaches(obs, LIMITS, at())
    late = next(b for b in found if b.kind == slo.DUE_SEND)
    assert late.message == (
        "Messages are going out late: 1 in 20 messages waited 3.0 h or more after its due "
        "time in the last hour (target: 5 min). Check that the app is running and the "
        "scheduler is on."
    )
    for b in found + [slo.heartbeat_breach(None, at(hours=-1), at(), LIMITS)]:
        title = slo.TITLES[b.kind]
        assert b.message.startswith(f"{title}: ") and b.message.lower().count(title.lower()) == 1
        assert not {"SLO", "p95", "tick", "breach"} & set(b.message.replace(".", " ").replace(":", " ").split())


@pytest.mark.parametrize(
    "open_kinds, breached, to_open, to_resolve",
    [
        (set(), set(), [], []),
        (set(), {slo.FAILURE_RATE}, [slo.FAILURE_RATE], []),
        ({slo.FAILURE_RATE}, {slo.FAILURE_RATE}, [], []),  # still breached: nothing new, no second email
        ({slo.FAILURE_RATE}, set(), [], [slo.FAILURE_RATE]),
        ({slo.HEARTBEAT}, {slo.DUE_SEND}, [slo.DUE_SEND], [slo.HEARTBEAT]),
    ],
)
def test_alert_changes(open_kinds, breached, to_open, to_resolve):
    assert slo.alert_changes(open_kinds, breached) == (to_open, to_resolve)


@pytest.mark.parametrize("value, ceiling", [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (120, 200), (501, 1000)])
def test_chart_axis_top(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_bar_chart_draws_one_bar_per_day_with_its_figure():
    svg = str(bar_chart_svg([("18 Nov", 3), ("19 Nov", 0), ("20 Nov", 5)], title="Requests <per> day"))
    assert svg.startswith("<svg") and svg.count("<rect") == 3
    assert re.findall(r'data-value="(\d+)"', svg) == ["3", "0", "5"]
    assert "Requests &lt;per&gt; day" in svg and "<per>" not in svg
    assert "20 Nov: 5 requests" in svg


@pytest.mark.parametrize(
    "args, key, first, last",
    [
        ({}, "30", date(2026, 10, 22), date(2026, 11, 20)),
        ({"period": "7"}, "7", date(2026, 11, 14), date(2026, 11, 20)),
        ({"period": "90"}, "90", date(2026, 8, 23), date(2026, 11, 20)),
        (
            {"period": "custom", "from": "2026-11-01", "to": "2026-11-03"},
            "custom",
            date(2026, 11, 1),
            date(2026, 11, 3),
        ),
        ({"from": "2026-11-10"}, "custom", date(2026, 11, 10), date(2026, 11, 20)),
    ],
)
def test_periods(args, key, first, last):
    period = metrics.parse_period(args, T)
    assert (period.key, period.first_day, period.last_day) == (key, first, last)
    assert len(period.days) == (last - first).days + 1
    assert period.start == datetime(first.year, first.month, first.day, tzinfo=UTC)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"period": "365"}, "7, 30 or 90"),
        ({"period": "custom", "from": "yesterday"}, "year-month-day"),
        ({"period": "custom", "from": "2026-11-10", "to": "2026-11-01"}, "before its start"),
        ({"period": "custom", "from": "2026-12-10", "to": "2026-12-11"}, "future"),
        ({"period": "custom", "from": "2024-01-01", "to": "2026-11-01"}, "at most 366"),
    ],
)
def test_bad_periods_are_refused_with_a_reason(args, message):
    with pytest.raises(metrics.PeriodInvalid, match=message):
        metrics.parse_period(args, T)


# -- figures from known history -----------------------------------------------------------


def post_order(client, clock, n, email, when):
    clock.set(when)
    body = order_body(
        f"evt_{n}",
        order_id=f"{1000 + n}",
        occurred_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        customer={"email": email, "first_name": "Ada"},
    )
    response = client.post("/webhooks/orders", json=body)
    assert response.status_code == 202, response.get_json()


def request_for(order_id):
    return db.session.scalar(select(TestimonialRequest).where(TestimonialRequest.order_id == order_id))


@pytest.fixture
def history(app, client, clock):
    """Three days of known history, through the real webhook, dispatch and customer paths.

    18 Nov 10:00  orders 1001 (ok), 1002 (ok), 1003 (fail.test: refused for good)
    18 Nov 10:02  tick: 2 sent, 1 failed, 120 s after they were due
    18 Nov 11:00  1001 clicked; 12:00 1001 submitted
    19 Nov 09:00  order 1004 (ok); 09:01 tick sends it (60 s)
    19 Nov 10:07  tick sends 1002's reminder (due 10:02, 300 s late)
    """
    campaign(
        clock,
        name="Reviews",
        delay_days=0,
        channel="email",
        reminder_delay_days=1,
        max_reminders=1,
        email_send_window=None,
    )
    day1 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    for n, email in ((1, "ada@example.com"), (2, "bob@example.com"), (3, "cy@fail.test")):
        post_order(client, clock, n, email, day1)
    dispatch_due(clock.set(day1 + timedelta(minutes=2)))
    record_click(request_for("1001"), day1 + timedelta(hours=1))
    record_submission(request_for("1001"), day1 + timedelta(hours=2))
    db.session.commit()
    post_order(client, clock, 4, "dee@example.com", datetime(2026, 11, 19, 9, 0, tzinfo=UTC))
    dispatch_due(clock.set(datetime(2026, 11, 19, 9, 1, tzinfo=UTC)))
    dispatch_due(clock.set(datetime(2026, 11, 19, 10, 7, tzinfo=UTC)))
    clock.set(T)
    return app


def test_period_figures_from_known_history(history):
    period = metrics.parse_period({"from": "2026-11-18", "to": "2026-11-20"}, T)
    figures = metrics.period_metrics(period)
    assert [(d.day.day, d.scheduled, d.sent, d.reminders, d.failed) for d in figures.days] == [
        (18, 3, 2, 0, 1),
        (19, 1, 2, 1, 0),
        (20, 0, 0, 0, 0),
    ]
    assert (figures.scheduled, figures.sent, figures.failed, figures.reminders) == (4, 4, 1, 1)
    assert figures.success_rate == pytest.approx(0.8)
    [row] = figures.channels
    assert (row.provider, row.channel, row.sent, row.failed, row.failure_rate) == ("outbox", "email", 4, 1, 0.2)
    assert (figures.requests_sent, figures.clicked, figures.submitted) == (3, 1, 1)
    assert figures.click_rate == pytest.approx(1 / 3) and figures.submission_rate == pytest.approx(1 / 3)
    assert figures.by_status == {"submitted": 1, "sent": 2, "failed": 1}


def test_period_excludes_what_happened_outside_it(history):
    figures = metrics.period_metrics(metrics.parse_period({"from": "2026-11-19", "to": "2026-11-19"}, T))
    assert (figures.scheduled, figures.sent, figures.failed, figures.reminders, figures.requests_sent) == (
        1,
        2,
        0,
        1,
        1,
    )


def test_campaign_filter(history, clock):
    other = campaign(clock, name="Other", status="draft")
    period = metrics.parse_period({"from": "2026-11-18"}, T)
    assert metrics.period_metrics(period, other.id).scheduled == 0
    assert metrics.period_metrics(period, other.id).channels == []
    mine = metrics.period_metrics(period, other.id - 1)
    assert (mine.scheduled, mine.sent, mine.failed) == (4, 4, 1)


def test_due_send_latency_p95_from_slot_sends(history):
    # 18 Nov: two first sends 120 s after due; 19 Nov: 60 s and a reminder 300 s late.
    assert metrics.due_send_p95_seconds(at(days=-3), at()) == (pytest.approx(300, abs=0.01), 4)
    assert metrics.due_send_p95_seconds(at(days=-3), datetime(2026, 11, 18, 23, tzinfo=UTC)) == (
        pytest.approx(120, abs=0.01),
        2,
    )
    assert metrics.due_send_p95_seconds(at(hours=-1), at()) == (None, 0)


def test_creation_latency_p95_from_order_events(history):
    p95, count = metrics.creation_p95_ms(at(days=-3), at())
    assert count == 4 and 0 <= p95 < 10_000


@pytest.mark.parametrize(
    "values",
    [
        [5.0],
        [1.0, 2.0],
        [3.0] * 7 + [9.0] * 2,
        list(range(1, 21)),
        list(range(1, 22)),
        [float(v % 13) for v in range(97)],
    ],
)
def test_sql_p95_is_the_nearest_rank_percentile(app, values):
    for n, value in enumerate(values):
        db.session.add(
            OrderEvent(
                event_id=f"e{n}",
                event_type="order.delivered",
                order_id=str(n),
                occurred_at=T,
                received_at=T - timedelta(minutes=1),
                processing_ms=value,
                payload="{}",
            )
        )
    db.session.flush()
    assert metrics.creation_p95_ms(at(hours=-1), at()) == (slo.percentile(values, 0.95), len(values))


def test_home_shows_the_figures_as_text(history, logged_in):
    page = logged_in.get("/?from=2026-11-18&to=2026-11-20").get_data(as_text=True)
    assert 'data-kpi="Requests scheduled">4<' in page
    assert 'data-kpi="Send success rate">80.0 %<' in page
    assert 'data-kpi="Click-through rate">33.3 %<' in page
    assert 'data-kpi="Reminders sent">1<' in page
    assert page.count("<rect") == 3 and "2026-11-19" in page
    assert re.search(r"<td>Email</td><td>outbox</td><td[^>]*>4</td><td[^>]*>1</td><td[^>]*>20.0 %</td>", page)


def test_home_defaults_to_the_last_30_days_and_lists_campaigns(history, logged_in):
    page = logged_in.get("/").get_data(as_text=True)
    assert "Last 30 days" in page and page.count("<rect") == 30
    assert '<option value="1" ' in page and "Reviews" in page


@pytest.mark.parametrize(
    "query, message",
    [
        ("period=12", "7, 30 or 90"),
        ("period=custom&from=2026-13-01", "year-month-day"),
        ("campaign=999", "no campaign 999"),
        ("campaign=drop%20table", "Unknown campaign"),
    ],
)
def test_home_refuses_a_bad_period_or_campaign_with_a_400(logged_in, query, message):
    response = logged_in.get(f"/?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_home_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_slo_panel_says_scheduler_disabled(logged_in):
    page = logged_in.get("/").get_data(as_text=True)
    assert "the in-app scheduler is disabled (SCHEDULER_ENABLED=false)" in page and ">disabled<" in page


# -- breaches: banner, log line, one email per breach ----------------------------------------


def failing_hour(client, clock, start, first_n=100, ok=7, bad=3):
    """ok + bad orders at ``start`` and a tick a minute later: bad/(ok+bad) of sends fail."""
    emails = [f"c{first_n}.{i}@example.com" for i in range(ok)] + [f"c{first_n}.{i}@fail.test" for i in range(bad)]
    for i, email in enumerate(emails):
        post_order(client, clock, first_n + i, email, start)
    dispatch_due(clock.set(start + timedelta(minutes=1)))


@pytest.fixture
def breach_app(app_factory):
    app = app_factory(ALERT_EMAIL="ops@shop.example")
    with app.app_context():
        yield app


def alert_emails(to="ops@shop.example"):
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.to == to).order_by(OutboxMessage.id)).all()


@pytest.fixture
def error_log(error_records):
    return error_records("app.monitoring")


def test_one_alert_email_per_breach_and_a_new_one_after_it_resolves(breach_app, clock, error_log):
    client = breach_app.test_client()
    campaign(clock, delay_days=0, channel="email", reminder_enabled=False, email_send_window=None)
    failing_hour(client, clock, at())
    report = evaluate_alerts(clock.set(at(minutes=2)))
    assert report["opened"] == [slo.FAILURE_RATE] and report["notified"] == [slo.FAILURE_RATE]
    for minutes in (3, 4, 10, 30):  # the same breach, evaluated every tick
        assert evaluate_alerts(clock.set(at(minutes=minutes)))["breaches"] == [slo.FAILURE_RATE]
    [email] = alert_emails()
    assert email.subject.endswith("testimonials] Many messages are failing")
    assert email.text.startswith("Many messages are failing: 3 of the 10 messages sent in the last hour failed (30%;")
    assert [r.getMessage() for r in error_log] == [
        f"SLO breach: failure_rate — {slo.failure_rate_breach(10, 3, LIMITS).message}"
    ]

    resolved = evaluate_alerts(clock.set(at(minutes=90)))  # the failures left the one-hour window
    assert resolved["resolved"] == [slo.FAILURE_RATE] and resolved["breaches"] == []
    assert evaluate_alerts(clock.set(at(minutes=95)))["resolved"] == []
    failing_hour(client, clock, at(hours=3), first_n=200)
    evaluate_alerts(clock.set(at(hours=3, minutes=2)))
    evaluate_alerts(clock.set(at(hours=3, minutes=3)))
    assert len(alert_emails()) == 2 and len(error_log) == 2
    alerts = db.session.scalars(select(Alert).order_by(Alert.id)).all()
    assert [(a.kind, a.resolved_at is not None, a.notified_at is not None) for a in alerts] == [
        (slo.FAILURE_RATE, True, True),
        (slo.FAILURE_RATE, False, True),
    ]


def test_no_email_without_alert_email_but_the_alert_is_recorded(app, client, clock, error_log):
    campaign(clock, delay_days=0, channel="email", reminder_enabled=False, email_send_window=None)
    failing_hour(client, clock, at())
    assert evaluate_alerts(clock.set(at(minutes=2)))["notified"] == []
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.request_id.is_(None))) == 0
    assert db.session.scalar(select(func.count(Alert.id))) == 1 and len(error_log) == 1


def test_a_failed_alert_email_is_retried_at_the_next_evaluation(app_factory, clock, error_log):
    app = app_factory(ALERT_EMAIL="ops@fail.test")  # the outbox refuses this address
    with app.app_context():
        campaign(clock, delay_days=0, channel="email", reminder_enabled=False, email_send_window=None)
        failing_hour(app.test_client(), clock, at())
        assert evaluate_alerts(clock.set(at(minutes=2)))["notified"] == []
        alert = db.session.scalar(select(Alert))
        assert alert.notified_at is None and "rejected" in alert.notify_error
        evaluate_alerts(clock.set(at(minutes=3)))
        assert len(alert_emails("ops@fail.test")) == 2  # tried again, still refused
        assert any("alert email" in r.getMessage() for r in error_log)


def test_heartbeat_alert_when_the_scheduler_stops(app_factory, clock):
    app = app_factory(SCHEDULER_ENABLED=True, SCHEDULER_INTERVAL_SECONDS=60, ALERT_EMAIL="ops@shop.example")
    with app.app_context():
        clock.set(at())
        record_tick(at(), at(seconds=1), TickReport())
        assert evaluate_alerts(clock.set(at(seconds=170)))["breaches"] == []
        report = evaluate_alerts(clock.set(at(seconds=200)))
        assert report["opened"] == [slo.HEARTBEAT]
        assert "No messages are being sent: the scheduler last ran 3 min ago" in alert_emails()[0].text
        record_tick(at(seconds=210), at(seconds=211), TickReport())
        assert evaluate_alerts(clock.set(at(seconds=215)))["resolved"] == [slo.HEARTBEAT]
        assert len(alert_emails()) == 1


def test_scheduler_job_evaluates_alerts(breach_app, clock):
    from app.scheduler import JOBS, alerts_job

    assert ("alerts", alerts_job, "SCHEDULER_INTERVAL_SECONDS") in JOBS
    campaign(clock, delay_days=0, channel="email", reminder_enabled=False, email_send_window=None)
    failing_hour(breach_app.test_client(), clock, at())
    clock.set(at(minutes=2))
    alerts_job(breach_app)
    alerts_job(breach_app)
    assert len(alert_emails()) == 1


def dashboard_pages(app):
    """Every GET page of the dashboard without URL arguments (new screens included)."""
    # Not the dashboard: the customer's pages, the public showcase (feed, wall, widget, shown on
    # the shop's own pages) and the brand assets they load carry no merchant banner.
    skip = ("static", "auth.", "public.", "intake_webhook", "bootstrap.", "showcase.", "brand.")
    for rule in app.url_map.iter_rules():
        if (
            "GET" in rule.methods
            and not rule.arguments
            and not rule.endpoint.startswith(skip)
            and not rule.rule.startswith("/webhooks")
        ):
            yield rule.rule


def test_banner_on_every_page_while_breached(app, clock, auth):
    auth.create()
    auth.login()
    campaign(clock, delay_days=0, channel="email", reminder_enabled=False, email_send_window=None)
    failing_hour(auth.client, clock, at())
    clock.set(at(minutes=2))
    pages = list(dashboard_pages(app))
    assert "/" in pages
    seen = 0
    for page in pages:
        response = auth.client.get(page)
        if response.status_code != 200 or response.mimetype != "text/html":
            response.close()  # a streamed download (CSV export) must not outlive the test
            continue
        body = response.get_data(as_text=True)
        assert "slo-banner" in body and "Many messages are failing: 3 of the 10" in body, page
        assert "SLO breach —" not in body, page  # the old jargon prefix
        seen += 1
    assert seen >= 1
    # Once the failures leave the window (and the 30 s cache expires), the banner goes.
    clock.set(at(minutes=90))
    assert "slo-banner" not in auth.client.get("/").get_data(as_text=True)


def test_banner_evaluation_is_cached_for_30_seconds(app, clock, auth):
    auth.create()
    auth.login()
    clock.set(at())
    assert "slo-banner" not in auth.client.get("/").get_data(as_text=True)
    campaign(clock, delay_days=0, channel="email", reminder_enabled=False, email_send_window=None)
    failing_hour(auth.client, clock, at(seconds=1))
    clock.set(at(seconds=20))
    assert "slo-banner" not in auth.client.get("/").get_data(as_text=True)  # cached, cheap
    clock.set(at(seconds=95))
    assert "slo-banner" in auth.client.get("/").get_data(as_text=True)


def test_alert_shown_on_home_with_state(app, clock, logged_in):
    campaign(clock, delay_days=0, channel="email", reminder_enabled=False, email_send_window=None)
    failing_hour(logged_in, clock, at())
    evaluate_alerts(clock.set(at(minutes=2)))
    page = logged_in.get("/").get_data(as_text=True)
    assert re.search(r'id="alerts-list".*?badge bg-danger">open<.*?opened <time datetime="2026-11-20T12:02', page, re.S)
    assert "table-danger" in page


def test_home_figures_include_a_request_created_a_moment_ago(history, logged_in, client, clock):
    assert 'data-kpi="Requests scheduled">4<' in logged_in.get("/?from=2026-11-18").get_data(as_text=True)
    post_order(client, clock, 50, "late@example.com", at(seconds=10))
    clock.set(at(seconds=11))
    assert 'data-kpi="Requests scheduled">5<' in logged_in.get("/?from=2026-11-18").get_data(as_text=True)
