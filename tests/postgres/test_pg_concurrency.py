"""The at-most-once and exactly-once rules under real concurrency, on PostgreSQL: ticks of
several processes (app instances with their own engines) racing over the same due slots,
the same order webhook delivered at once from several threads, and the stuck-claim rule.

SQLite serialises writers (BEGIN IMMEDIATE), so only here do two transactions really
interleave: the conditional UPDATEs and unique constraints are what keeps them apart.
"""

import threading

import pytest
from sqlalchemy import event, func, select

from app.events.views import TWILIO_STATUS_PATH
from app.extensions import db
from app.intake.models import OrderEvent
from app.lifecycle.claims import claim_slot
from app.lifecycle.dispatch import TickReport, dispatch_due
from app.lifecycle.models import SlotSend, TestimonialRequestEvent
from app.outbox.models import OutboxMessage
from tests.events_helpers import post_sendgrid, post_twilio, sg_event, status_params
from tests.factories import (
    all_requests,
    campaign,
    events_of,
    item,
    order_body,
    outbox,
    post_order,
    request_row,
    tick,
)
from tests.provider_helpers import register_rendezvous_provider

pytestmark = pytest.mark.postgres

WORKERS = 3


def customer(n):
    return {"email": f"c{n}@example.com", "phone": f"+1555000{n:04d}", "first_name": "Ada"}


def in_threads(count, work):
    """Run ``work(index)`` in ``count`` threads released together; return their results."""
    start = threading.Barrier(count, timeout=60)
    results, errors = [None] * count, []

    def run(index):
        try:
            start.wait()
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported below with the thread's index
            errors.append((index, exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is still running"
    assert errors == [], errors
    return results


def rendezvous_before(apps, statement_start):
    """Each app's first SQL statement starting with ``statement_start`` waits until every
    app has come that far: all have read the same state before any of them writes."""
    barrier = threading.Barrier(len(apps), timeout=60)
    for app in apps:
        with app.app_context():
            engine = db.engine
        waited = []

        @event.listens_for(engine, "before_cursor_execute")
        def wait(conn, cursor, statement, parameters, context, executemany, waited=waited):
            if not waited and statement.lstrip().startswith(statement_start):
                waited.append(True)
                barrier.wait()


def racing_ticks(app_factory, clock, name):
    register_rendezvous_provider(name, WORKERS)
    workers = [app_factory(EMAIL_PROVIDER=name, SMS_PROVIDER=name) for _ in range(WORKERS)]

    def run(index):
        with workers[index].app_context():
            return dispatch_due(clock())

    reports = in_threads(WORKERS, run)
    assert all(r.errors == [] for r in reports), reports
    assert all(r.claimed > 0 for r in reports), reports  # every tick really sent some
    return reports


def sends_per_slot_and_channel(model):
    db.session.rollback()
    counts = db.session.execute(
        select(model.request_id, model.slot, model.channel, func.count()).group_by(
            model.request_id, model.slot, model.channel
        )
    ).all()
    db.session.rollback()
    return {(request_id, slot, channel): n for request_id, slot, channel, n in counts}


def test_ticks_of_several_processes_at_once_send_each_slot_and_channel_exactly_once(
    app, app_factory, client, clock, cli
):
    campaign(clock, delay_days=0, channel="both", reminder_delay_days=1, max_reminders=1, expire_after_days=30)
    orders = 30
    for n in range(orders):
        body = order_body(f"evt_{n}", order_id=str(n), customer=customer(n))
        assert post_order(client, body).status_code == 202
    db.session.rollback()

    first = racing_ticks(app_factory, clock, "rendezvous-initial")

    assert sum(r.sent for r in first) == orders
    assert sum(r.messages for r in first) == 2 * orders
    expected = {(r.id, 0, channel) for r in all_requests() for channel in ("email", "sms")}
    assert sends_per_slot_and_channel(OutboxMessage) == dict.fromkeys(expected, 1)
    assert sends_per_slot_and_channel(SlotSend) == dict.fromkeys(expected, 1)

    # A day later every reminder is due at once: the same race over slot 1.
    clock.advance(days=1)
    second = racing_ticks(app_factory, clock, "rendezvous-reminder")

    assert sum(r.sent for r in second) == orders
    expected |= {(request_id, 1, channel) for request_id, _, channel in expected}
    assert sends_per_slot_and_channel(OutboxMessage) == dict.fromkeys(expected, 1)
    assert sends_per_slot_and_channel(SlotSend) == dict.fromkeys(expected, 1)
    assert {r.status for r in db.session.scalars(select(SlotSend))} == {"sent"}
    for req in all_requests():
        assert (req.status, req.reminder_count, req.claimed_at) == ("sent", 1, None)
        sent = [(e.slot, e.channel) for e in events_of(req.id, "sent")]
        assert sorted(sent) == [(0, "email"), (0, "sms"), (1, "email"), (1, "sms")]
    # The home page's per-day counts (kept by triggers) agree with the rows after the race.
    assert cli("stats", "check")["ok"] is True


def race_webhook(app_factory, bodies):
    """POST each body from its own app instance (own engine and connections) at once."""
    apps = [app_factory() for _ in bodies]

    def deliver(index):
        response = post_order(apps[index].test_client(), bodies[index])
        return response.status_code, response.get_json()

    return in_threads(len(bodies), deliver)


THREE_PRODUCTS = [item("li_1", "p_1"), item("li_2", "p_2"), item("li_3", "p_3")]


def order_events():
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(OrderEvent))


def test_the_same_webhook_delivered_at_once_from_several_threads_creates_each_request_once(
    app, app_factory, clock, cli
):
    campaign(clock)
    body = order_body("evt_race", items=THREE_PRODUCTS)

    answers = race_webhook(app_factory, [body] * 6)

    assert sorted(status for status, _ in answers) == [200] * 5 + [202]
    [winner] = [answer for _, answer in answers if not answer["duplicate"]]
    assert len(winner["created"]) == 3
    assert sorted(r.id for r in all_requests()) == sorted(winner["created"])
    assert sorted(r.product_id for r in all_requests()) == ["p_1", "p_2", "p_3"]
    assert order_events() == 1
    assert cli("stats", "check")["ok"] is True


def test_the_same_order_under_different_event_ids_at_once_creates_each_request_once(app, app_factory, clock, cli):
    campaign(clock)

    answers = race_webhook(app_factory, [order_body(f"evt_{i}", items=THREE_PRODUCTS) for i in range(6)])

    assert [status for status, _ in answers] == [202] * 6
    assert sum(len(answer["created"]) for _, answer in answers) == 3
    assert sorted(r.product_id for r in all_requests()) == ["p_1", "p_2", "p_3"]
    assert order_events() == 6  # every delivery is kept with its outcome
    assert cli("stats", "check")["ok"] is True


def test_a_delivery_arriving_while_a_cancellation_of_its_order_is_written_waits_and_asks_nothing(
    app, app_factory, clock
):
    """The cancellation's transaction holds the order's lock, has found no request to stop
    and has not committed when the delivery arrives. The delivery's reads cannot see the
    cancellation yet; its write waits for the lock, then finds the snapshot moved and
    decides again. Without the per-order lock both committed: the delivery made requests
    that nothing would ever stop."""
    campaign(clock, delay_days=0)
    delivery_app, cancel_app = app_factory(), app_factory()
    cancel_ready, delivery_done = threading.Event(), threading.Event()

    def hold_the_cancellation(session):
        if threading.current_thread().name == "cancel":
            cancel_ready.set()
            delivery_done.wait(timeout=1.5)  # with the lock, the delivery waits for this commit

    event.listen(db.session, "before_commit", hold_the_cancellation)
    try:

        def cancel():
            body = order_body("evt_c", event_type="order.cancelled", occurred_at="2026-11-20T13:00:00Z", items=[])
            return post_order(cancel_app.test_client(), body).status_code

        def deliver():
            cancel_ready.wait(timeout=10)
            response = post_order(delivery_app.test_client(), order_body("evt_d", items=THREE_PRODUCTS))
            delivery_done.set()
            return response.status_code, response.get_json()

        results = {}
        threads = [
            threading.Thread(target=lambda f=f, n=n: results.update({n: f()}), name=n)
            for n, f in (("cancel", cancel), ("delivery", deliver))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        event.remove(db.session, "before_commit", hold_the_cancellation)

    assert results["cancel"] == 202
    status, answer = results["delivery"]
    assert status == 202 and answer["created"] == [], answer
    db.session.rollback()
    assert all_requests() == []


# The SQLite tests of the stuck-claim rule, of a crash after the hand-over and of a pause or
# a customer acting while a tick runs, run here on PostgreSQL (this folder's conftest gives
# them a PostgreSQL database).
from tests.lifecycle.test_dispatch import (  # noqa: E402
    test_a_claim_left_by_a_crashed_process_fails_as_interrupted_after_the_lease_and_is_never_resent,  # noqa: F401
    test_a_crash_between_the_provider_call_and_the_commit_never_resends_and_keeps_what_was_recorded,  # noqa: F401
)
from tests.lifecycle.test_reminders import (  # noqa: E402
    test_a_campaign_paused_while_a_tick_runs_holds_the_slots_it_has_not_claimed,  # noqa: F401
    test_a_click_while_the_first_message_is_in_flight_ends_clicked_with_reminders_planned,  # noqa: F401
    test_a_submission_while_a_reminder_is_in_flight_stops_the_reminders,  # noqa: F401
)


def test_a_pause_committed_between_reading_the_campaign_and_claiming_holds_the_slot(
    app, app_factory, client, clock, cli
):
    """Spec §5 on PostgreSQL (READ COMMITTED: each statement sees what was committed before
    it): the tick has counted the slot as due under an active campaign, then the merchant's
    pause commits just before the claim; the claim's UPDATE requires the campaign to be
    active in the same statement, so the slot is held, not sent."""
    from app.campaign_admin.services import set_status
    from app.campaigns.models import Campaign

    created = campaign(clock, delay_days=0)
    [request_id] = post_order(client, order_body()).get_json()["created"]
    due = request_row(request_id).next_send_at
    db.session.rollback()
    worker, merchant = app_factory(), app_factory()
    with worker.app_context():
        engine = db.engine
    paused = []

    @event.listens_for(engine, "before_cursor_execute")
    def pause_before_the_claim(conn, cursor, statement, parameters, context, executemany):
        if not paused and statement.lstrip().startswith("WITH due AS"):  # the claim statement
            paused.append(True)
            with merchant.app_context():
                set_status(db.session.get(Campaign, created.id), "pause", clock())
                db.session.commit()

    with worker.app_context():
        report = dispatch_due(clock())

    assert paused and (report.due, report.claimed, report.messages) == (1, 0, 0)
    req = request_row(request_id)
    assert (req.status, req.next_send_at, req.claimed_at) == ("scheduled", due, None)
    assert outbox(outcome=None) == []
    cli("campaigns", "resume", str(created.id))
    assert tick(clock).sent == 1


def test_an_email_bounce_and_an_sms_failure_of_one_request_arriving_at_once_are_both_recorded(
    app, app_factory, client, clock
):
    campaign(clock, delay_days=0, channel="both")
    [request_id] = post_order(client, order_body()).get_json()["created"]
    assert tick(clock).sent == 1
    req = request_row(request_id)
    sent_at, sms_sid, phone = int(clock().timestamp()), req.sms_message_id, req.customer_phone
    db.session.rollback()
    # No SENDGRID_WEBHOOK_PUBLIC_KEY / TWILIO_AUTH_TOKEN: outside production unsigned calls are taken.
    workers = [app_factory() for _ in range(2)]
    # Both have written their event row before either updates the request.
    rendezvous_before(workers, "UPDATE testimonial_requests")
    deliveries = [
        lambda c: post_sendgrid(c, [sg_event(request_id, "bounce", timestamp=sent_at + 60, reason="mailbox full")]),
        lambda c: post_twilio(
            c, TWILIO_STATUS_PATH, status_params(sms_sid, "undelivered", error_code=30003, to=phone), token=None
        ),
    ]

    answers = in_threads(2, lambda i: deliveries[i](workers[i].test_client()).status_code)

    assert answers == [200, 200]
    assert sorted(e.channel for e in events_of(request_id, "failed")) == ["email", "sms"]
    req = request_row(request_id)
    assert req.status == "failed"  # neither initial message arrived
    assert req.last_error.startswith("email: ") and " · sms: " in req.last_error


def test_ticks_recovering_the_same_stale_claim_at_once_record_the_interruption_once(app, app_factory, client, clock):
    campaign(clock, delay_days=0)
    [request_id] = post_order(client, order_body()).get_json()["created"]
    claim_slot(request_id, clock(), TickReport())  # … and the process dies before sending
    clock.advance(seconds=app.config["SEND_LEASE_SECONDS"] + 1)
    db.session.rollback()
    workers = [app_factory() for _ in range(WORKERS)]
    # Every tick has read the claim and its 'sending' row before any of them writes.
    rendezvous_before(workers, "UPDATE slot_sends")

    def run(index):
        with workers[index].app_context():
            return dispatch_due(clock())

    reports = in_threads(WORKERS, run)

    assert (sum(r.recovered for r in reports), sum(r.failed for r in reports)) == (1, 1)
    req = request_row(request_id)
    assert (req.status, req.claimed_at, req.claim_id) == ("failed", None, None)
    failed = db.session.execute(
        select(TestimonialRequestEvent.channel, TestimonialRequestEvent.error_code).where(
            TestimonialRequestEvent.request_id == request_id, TestimonialRequestEvent.type == "failed"
        )
    ).all()
    assert sorted(failed, key=str) == [("email", "interrupted"), (None, None)]  # the channel's, the request's
    assert outbox(outcome=None) == []
