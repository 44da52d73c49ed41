"""One request's whole life on PostgreSQL, through the real paths — order webhook, dispatch,
the customer opening the link, a reminder, the submission — and then the home page's
figures of it (daily_stats kept by PostgreSQL triggers, dates that come back as dates,
latencies computed with EXTRACT(epoch …)). Spec §1 (the 8 steps), §8 (the figures)."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.monitoring import metrics
from app.testimonials.models import Testimonial
from tests.factories import (
    campaign,
    event_types,
    order_body,
    outbox,
    post_order,
    request_row,
    submit_testimonial,
    tick,
)

pytestmark = pytest.mark.postgres


def test_a_request_from_the_order_webhook_to_the_submitted_testimonial(app, client, clock, cli):
    campaign(clock, delay_days=1, channel="both", reminder_delay_days=2, max_reminders=2)
    response = post_order(client, order_body())  # delivered 2026-11-20 12:00
    assert response.status_code == 202, response.get_json()
    [request_id] = response.get_json()["created"]
    assert request_row(request_id).status == "scheduled"

    clock.advance(days=1)  # 21 Nov 12:00: the initial message on both channels
    report = tick(clock)
    assert (report.sent, report.messages) == (1, 2)
    first_sent = clock()
    req = request_row(request_id)
    assert (req.status, req.sent_at, req.next_slot) == ("sent", first_sent, 1)

    clock.advance(hours=3)  # the customer opens the link
    page = client.get(f"/r/{req.token}")
    assert page.status_code == 200 and "Hi Ada" in page.get_data(as_text=True)
    assert (request_row(request_id).status, request_row(request_id).clicked_at) == ("clicked", clock())

    clock.set(first_sent.replace(day=23))  # 23 Nov 12:00: reminder 1, still owed (clicked is not submitted)
    assert tick(clock).sent == 1
    req = request_row(request_id)
    assert (req.status, req.reminder_count, req.last_sent_at) == ("clicked", 1, clock())

    clock.advance(hours=1)
    assert submit_testimonial(client, req.token, text="Love the mug").status_code == 200

    req = request_row(request_id)
    assert (req.status, req.submitted_at, req.next_send_at) == ("submitted", clock(), None)
    [testimonial] = db.session.scalars(select(Testimonial)).all()
    assert (testimonial.request_id, testimonial.text) == (request_id, "Love the mug")
    clock.advance(days=10)
    assert tick(clock).messages == 0  # reminder 2 never goes
    # sorted: the two channels of a slot go out side by side, in either order
    assert sorted((m.slot, m.channel) for m in outbox(request_id)) == [
        (0, "email"),
        (0, "sms"),
        (1, "email"),
        (1, "sms"),
    ]
    assert event_types(request_id) == ["queued", "sent", "sent", "clicked", "queued", "sent", "sent", "submitted"]

    # The home page's figures of that life.
    figures = metrics.period_metrics(metrics.parse_period({"from": "2026-11-20", "to": "2026-11-23"}, clock()))
    assert [(d.day, d.scheduled, d.sent, d.reminders, d.failed) for d in figures.days] == [
        (date(2026, 11, 20), 1, 0, 0, 0),
        (date(2026, 11, 21), 0, 2, 0, 0),
        (date(2026, 11, 22), 0, 0, 0, 0),
        (date(2026, 11, 23), 0, 2, 2, 0),
    ]
    assert (figures.requests_sent, figures.clicked, figures.submitted, figures.by_status) == (1, 1, 1, {"submitted": 1})
    assert sorted((c.channel, c.provider, c.sent, c.failed) for c in figures.channels) == [
        ("email", "outbox", 2, 0),
        ("sms", "outbox", 2, 0),
    ]
    since, until = datetime(2026, 11, 20, tzinfo=UTC), clock()
    assert metrics.due_send_p95_seconds(since, until) == (0.0, 4)  # every slot went out when due
    assert metrics.creation_p95_ms(since, until)[1] == 1
    assert cli("stats", "check")["ok"] is True


# The daily_stats checks of tests/monitoring/test_daily_stats.py, run here against the PostgreSQL
# statement triggers of migration 0005.
from tests.monitoring.test_daily_stats import (  # noqa: E402, F401
    test_every_step_of_the_lifecycle_keeps_the_counts_exact,
    test_writes_outside_the_app_are_counted_too,
)
