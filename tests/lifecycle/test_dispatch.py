"""Step 5: a dispatch tick claims due slots, renders, sends through the outbox provider and
records what happened — at most once per slot and channel, with backoff on transient
failures, terminal failure on permanent ones, and the stuck-claim rule.

Spec §3 (exactly once per planned slot: claims, the lease, a crash after the hand-over),
§6 (last_error, a failed event with its reason, bounded retries, terminal failed),
§7 (worker replay sends nothing again), §10 (event written with the send's acknowledgement;
the scheduler job and its heartbeat)."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.campaigns.models import MessageTemplate
from app.extensions import db
from app.lifecycle.claims import claim_slot
from app.lifecycle.dispatch import TickReport, dispatch_due
from app.lifecycle.models import SlotSend
from app.lifecycle.results import INTERRUPTED
from app.outbox.models import OutboxMessage
from app.settings_admin.services import save_settings
from tests.factories import (
    campaign,
    create_request,
    event_types,
    events_of,
    item,
    order_body,
    outbox,
    post_order,
    request_row,
    sent_request,
    tick,
)
from tests.provider_helpers import register_rendezvous_provider


def customer(email="ada@example.com", phone="+15551234567"):
    return {"email": email, "phone": phone, "first_name": "Ada", "last_name": "L"}


def request_for(client, clock, *, email="ada@example.com", phone="+15551234567", channel="email", **settings):
    body = order_body(customer=customer(email, phone))
    return create_request(client, clock, body=body, channel=channel, **settings)


# -- the happy path -------------------------------------------------------------------------


def test_due_request_goes_scheduled_to_queued_to_sent_with_events_and_provider_id(client, clock):
    request_id = request_for(client, clock)
    assert request_row(request_id).status == "scheduled"

    report = tick(clock)

    assert (report.due, report.claimed, report.sent, report.messages) == (1, 1, 1, 1)
    req = request_row(request_id)
    assert req.status == "sent"
    assert req.sent_at == req.last_sent_at == clock()
    assert req.email_message_id.startswith("outbox-")
    assert (req.attempts, req.last_error, req.claimed_at, req.claim_id) == (0, None, None, None)
    assert event_types(request_id) == ["queued", "sent"]
    sent = events_of(request_id, "sent")[0]
    assert (sent.channel, sent.slot, sent.provider, sent.provider_message_id, sent.occurred_at) == (
        "email",
        0,
        "outbox",
        req.email_message_id,
        clock(),
    )
    [message] = outbox(request_id)
    assert message.provider_message_id == req.email_message_id


def test_claiming_moves_the_request_to_queued_before_the_provider_is_called(client, clock):
    request_id = request_for(client, clock)
    claim = claim_slot(request_id, clock(), TickReport())
    req = request_row(request_id)
    assert (req.status, req.claimed_at, req.claim_id) == ("queued", clock(), claim.claim_id)
    [row] = db.session.scalars(select(SlotSend).where(SlotSend.request_id == request_id)).all()
    assert (row.slot, row.channel, row.status, row.attempts) == (0, "email", "sending", 1)
    assert event_types(request_id) == ["queued"]
    assert outbox() == []


def test_a_request_not_yet_due_is_left_alone(client, clock):
    request_id = request_for(client, clock, delay_days=3)
    clock.advance(days=3, seconds=-1)
    assert tick(clock).due == 0
    assert request_row(request_id).status == "scheduled"
    clock.advance(seconds=1)
    assert tick(clock).sent == 1


def test_rendered_message_names_the_customer_product_shop_link_and_unsubscribe_link(app, client, clock):
    save_settings({"shop_name": "Mugs & Co"}, clock())  # the Settings screen's service
    db.session.commit()
    body = order_body(items=[item("li_1", "p_1", title="Blue <mug>")])
    request_id = create_request(client, clock, body=body, channel="both")

    tick(clock)

    token = request_row(request_id).token
    link, unsubscribe = f"http://testserver.local/r/{token}", f"http://testserver.local/u/{token}"
    email, sms = sorted(outbox(request_id), key=lambda m: m.channel)
    assert (email.channel, email.to, email.slot) == ("email", "ada@example.com", 0)
    assert email.subject == "How is your Blue <mug>? A quick video?"
    for expected in ("Hi Ada", "Blue <mug>", "Mugs & Co", link, unsubscribe):
        assert expected in email.text
    for expected in ("Hi Ada", "Blue &lt;mug&gt;", "Mugs &amp; Co", f'href="{link}"', f'href="{unsubscribe}"'):
        assert expected in email.html  # HTML is escaped
    assert (sms.channel, sms.to, sms.subject, sms.html) == ("sms", "+15551234567", None, None)
    for expected in ("Mugs & Co", "Hi Ada", "Blue <mug>", link):
        assert expected in sms.text


def test_customer_without_a_first_name_is_greeted_generically(client, clock):
    body = order_body(customer={"email": "ada@example.com"})
    request_id = create_request(client, clock, body=body)
    tick(clock)
    assert "Hi there," in outbox(request_id)[0].text


# -- at most once ---------------------------------------------------------------------------


def test_running_dispatch_again_at_the_same_time_sends_nothing_again(client, clock):
    request_id = sent_request(client, clock)
    before = len(outbox(outcome=None))

    again = tick(clock)

    assert (again.due, again.sent, again.messages) == (0, 0, 0)
    assert len(outbox(outcome=None)) == before
    assert event_types(request_id) == ["queued", "sent"]


def test_two_dispatch_ticks_at_once_send_each_slot_exactly_once_per_channel(app, app_factory, client, clock):
    campaign(clock, delay_days=0, channel="both")
    for n in range(12):
        body = order_body(f"evt_{n}", order_id=str(n), customer=customer(f"c{n}@example.com", f"+1555000{n:04d}"))
        assert post_order(client, body).status_code == 202
    # The test's own session read after the last request; end its transaction as a
    # request's teardown would, or it holds SQLite's write lock (BEGIN IMMEDIATE).
    db.session.rollback()
    # Each tick waits inside its first provider call until the other tick is inside one
    # too: both are mid-flight at once, holding claims, whatever the thread scheduling.
    register_rendezvous_provider("rendezvous", 2, timeout=30)
    workers = [app_factory(EMAIL_PROVIDER="rendezvous", SMS_PROVIDER="rendezvous") for _ in range(2)]
    barrier = threading.Barrier(2)
    reports = [None, None]

    def run(index):
        with workers[index].app_context():
            barrier.wait()
            reports[index] = dispatch_due(clock())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert all(r is not None and r.errors == [] for r in reports), reports
    assert all(r.claimed > 0 for r in reports)  # both ticks really sent
    assert sum(r.sent for r in reports) == 12
    assert sum(r.messages for r in reports) == 24
    per_slot = db.session.execute(
        select(OutboxMessage.request_id, OutboxMessage.slot, OutboxMessage.channel, func.count()).group_by(
            OutboxMessage.request_id, OutboxMessage.slot, OutboxMessage.channel
        )
    ).all()
    assert len(per_slot) == 24
    assert {count for *_, count in per_slot} == {1}
    assert {r.status for r in db.session.scalars(select(SlotSend))} == {"sent"}


# -- the stuck-claim rule -------------------------------------------------------------------


def test_a_tick_stops_claiming_when_its_time_budget_is_spent_and_the_next_tick_goes_on(app_factory, clock):
    """Spec §3: claims carry the tick's start time, so a tick that went on claiming past
    the lease would have its own live claims taken for a crashed process's by another
    process. It stops after its budget (half the lease by default) — here none, so one
    slot per tick — and the next tick sends the rest, each exactly once."""
    app = app_factory(DISPATCH_TIME_BUDGET_SECONDS=0)
    with app.app_context():
        client = app.test_client()
        campaign(clock, delay_days=0)
        for n in range(3):
            body = order_body(f"evt_{n}", order_id=str(n), customer=customer(f"c{n}@example.com", f"+1555000{n:04d}"))
            assert post_order(client, body).status_code == 202

        reports = [tick(clock) for _ in range(4)]

        assert [(r.due, r.sent, r.left_for_next_tick) for r in reports] == [(3, 1, 2), (2, 1, 1), (1, 1, 0), (0, 0, 0)]
        assert [m.request_id for m in outbox()] == [1, 2, 3]


@pytest.mark.parametrize(("lease", "expected"), [(600, (3, 3, 0)), (0, (3, 1, 2))])
def test_the_default_tick_budget_follows_the_lease(app_factory, clock, lease, expected):
    app = app_factory(SEND_LEASE_SECONDS=lease)
    with app.app_context():
        campaign(clock, delay_days=0)
        for n in range(3):
            body = order_body(f"evt_{n}", order_id=str(n), customer=customer(f"c{n}@example.com", f"+1555000{n:04d}"))
            assert post_order(app.test_client(), body).status_code == 202
        report = tick(clock)
        assert (report.due, report.sent, report.left_for_next_tick) == expected


def test_a_claim_left_by_a_crashed_process_fails_as_interrupted_after_the_lease_and_is_never_resent(
    app, client, clock, runner
):
    request_id = request_for(client, clock)
    claim_slot(request_id, clock(), TickReport())  # … and the process dies before sending
    lease = app.config["SEND_LEASE_SECONDS"]

    assert tick(clock).messages == 0  # still claimed: another tick keeps off
    clock.advance(seconds=lease)
    assert tick(clock).recovered == 0  # not older than the lease yet
    assert request_row(request_id).status == "queued"

    clock.advance(seconds=1)
    report = tick(clock)

    assert (report.recovered, report.failed, report.messages) == (1, 1, 0)
    req = request_row(request_id)
    assert req.status == "failed"
    assert req.last_error.startswith(f"email: {INTERRUPTED}") and INTERRUPTED == "interrupted, outcome unknown"
    assert "(claimed at 2026-11-20 12:00:00 UTC)" in req.last_error
    assert (req.next_send_at, req.claimed_at, req.claim_id) == (None, None, None)
    assert event_types(request_id) == ["queued", "failed", "failed"]
    assert events_of(request_id, "failed")[0].error_code == "interrupted"
    clock.advance(days=5)
    assert tick(clock).messages == 0
    assert outbox(outcome=None) == []  # never re-sent blindly

    result = runner.invoke(args=["requests", "retry", str(request_id)])

    assert result.exit_code == 0, result.output
    assert request_row(request_id).status == "scheduled"
    assert tick(clock).sent == 1
    req = request_row(request_id)
    assert (req.status, req.sent_at, req.last_error) == ("sent", clock(), None)
    assert len(outbox(request_id)) == 1
    assert event_types(request_id)[-3:] == ["retried", "queued", "sent"]


class ProcessDies(BaseException):
    """Stands for the process being killed: not an Exception, so nothing catches it."""


def test_a_crash_between_the_provider_call_and_the_commit_never_resends_and_keeps_what_was_recorded(app, client, clock):
    """Spec §3, §7 (at most once): on a "both" request the e-mail's answer was recorded,
    then the process died after handing the SMS over but before recording it. After the
    lease the SMS is "interrupted, outcome unknown" and never re-sent; the slot counts as
    sent (the e-mail went) and reminders stay planned."""
    from app.outbox.provider import OutboxProvider
    from app.providers.base import register

    @register("dies-after-sms")
    class DiesAfterHandOver(OutboxProvider):
        def send(self, message):
            provider_message_id = super().send(message)
            if message.channel == "sms":
                raise ProcessDies()
            return provider_message_id

    app.config["EMAIL_PROVIDER"] = app.config["SMS_PROVIDER"] = "dies-after-sms"
    request_id = request_for(client, clock, channel="both", reminder_delay_days=4)
    crashed_at = clock()
    with pytest.raises(ProcessDies):
        tick(clock)
    db.session.rollback()
    app.config["EMAIL_PROVIDER"] = app.config["SMS_PROVIDER"] = "outbox"
    assert request_row(request_id).status == "queued"

    clock.advance(seconds=app.config["SEND_LEASE_SECONDS"] + 1)
    report = tick(clock)

    assert (report.recovered, report.sent, report.messages) == (1, 1, 0)
    req = request_row(request_id)
    assert (req.status, req.claim_id, req.next_slot) == ("sent", None, 1)
    # Spec §2: timed from when the e-mail was accepted, not from the recovery.
    assert (req.sent_at, req.next_send_at) == (crashed_at, crashed_at + timedelta(days=4))
    assert req.last_error.startswith(f"sms: {INTERRUPTED}")
    assert req.email_message_id is not None and req.sms_message_id is None
    clock.advance(days=1)
    tick(clock)
    assert sorted((m.slot, m.channel) for m in outbox(request_id)) == [(0, "email"), (0, "sms")]  # once each


def test_a_channel_whose_outcome_is_unknown_is_not_sent_again_by_the_retries_of_the_other(app, client, clock):
    """Spec §3, §6, §7: on a "both" slot the e-mail timed out after reaching the provider
    (outcome unknown) and the SMS failed transiently. The backoff retries the SMS only; the
    e-mail is never handed over a second time."""
    from app.outbox.provider import OutboxProvider
    from app.providers.base import ProviderError, register

    @register("email-times-out")
    class EmailTimesOut(OutboxProvider):
        def send(self, message):
            super().send(message)  # it reached the provider …
            raise ProviderError("no answer in time", retryable=False, code="timeout", outcome_unknown=True)

    app.config["EMAIL_PROVIDER"] = "email-times-out"
    request_id = request_for(client, clock, email="ada@example.com", phone="+15550009998", channel="both")
    for _ in range(3):  # the SMS is flaky: it goes out at the third attempt
        tick(clock)
        clock.advance(hours=1)

    req = request_row(request_id)
    assert (req.status, req.sms_message_id is not None, req.email_message_id) == ("sent", True, None)
    assert req.last_error == "email: interrupted, outcome unknown [timeout]: no answer in time"
    handed_over = [m.channel for m in outbox(request_id, outcome=None)]
    assert handed_over.count("email") == 1 and handed_over.count("sms") == 3


def test_a_crash_during_a_reminder_keeps_the_request_sent_status_history(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    clock.advance(days=4)
    claim_slot(request_id, clock(), TickReport())
    clock.advance(hours=1)
    tick(clock)
    req = request_row(request_id)
    assert req.status == "failed" and req.last_error.startswith(f"email: {INTERRUPTED}")
    assert len(outbox(request_id)) == 1  # the initial message only


# -- failures: backoff, permanent, terminal ---------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "email", "phone"),
    [
        ("email", "ada@flaky.test", "+15551234567"),
        ("sms", "ada@example.com", "+15550009998"),
    ],
    ids=["email-flaky.test", "sms-9998"],
)
def test_transient_failures_retry_with_exponential_backoff_and_succeed_on_the_third_attempt(
    app, client, clock, channel, email, phone
):
    base = app.config["RETRY_BASE_SECONDS"]
    request_id = request_for(client, clock, email=email, phone=phone, channel=channel)
    start = clock()

    first = tick(clock)

    assert (first.sent, first.retry_scheduled) == (0, 1)
    req = request_row(request_id)
    assert (req.status, req.attempts, req.next_send_at) == ("scheduled", 1, start + timedelta(seconds=base))
    assert req.last_error.startswith(f"{channel}: retryable")
    clock.set(start + timedelta(seconds=base - 1))
    assert tick(clock).messages == 0  # one second early: nothing

    clock.set(start + timedelta(seconds=base))
    assert tick(clock).retry_scheduled == 1
    second_failed = clock()
    req = request_row(request_id)
    assert (req.attempts, req.next_send_at) == (2, second_failed + timedelta(seconds=2 * base))
    clock.set(second_failed + timedelta(seconds=2 * base - 1))
    assert tick(clock).messages == 0

    clock.set(second_failed + timedelta(seconds=2 * base))
    assert tick(clock).sent == 1

    req = request_row(request_id)
    assert (req.status, req.attempts, req.sent_at, req.last_error) == ("sent", 0, clock(), None)
    assert [e.type for e in events_of(request_id) if e.type in ("failed", "sent")] == ["failed", "failed", "sent"]
    assert [m.outcome for m in outbox(request_id, outcome=None)] == ["rejected", "rejected", "accepted"]


@pytest.mark.parametrize(
    ("channel", "email", "phone"),
    [
        ("email", "ada@down.test", "+15551234567"),
        ("sms", "ada@example.com", "+15550009997"),
    ],
    ids=["email-down.test", "sms-9997"],
)
def test_provider_down_ends_failed_after_max_send_attempts(app, client, clock, channel, email, phone):
    request_id = request_for(client, clock, email=email, phone=phone, channel=channel)
    for _ in range(10):
        tick(clock)
        clock.advance(hours=1)

    req = request_row(request_id)
    max_attempts = app.config["MAX_SEND_ATTEMPTS"]
    assert (req.status, req.attempts, req.next_send_at, req.sent_at) == ("failed", max_attempts, None, None)
    assert req.last_error.startswith(f"{channel}: retryable") and "unavailable" in req.last_error
    failed = events_of(request_id, "failed")
    assert [e.channel for e in failed] == [channel] * max_attempts + [None]
    assert f"gave up after {max_attempts} attempts" in failed[-1].detail
    assert len(outbox(request_id, outcome=None)) == max_attempts


def test_backoff_and_attempt_limit_follow_the_settings(app_factory, clock):
    other = app_factory(RETRY_BASE_SECONDS=60, MAX_SEND_ATTEMPTS=4)
    with other.app_context():
        request_id = request_for(other.test_client(), clock, email="ada@down.test")
        due_times = []
        for _ in range(4):
            tick(clock)
            req = request_row(request_id)
            due_times.append(req.next_send_at and (req.next_send_at - clock()).total_seconds())
            if req.next_send_at:
                clock.set(req.next_send_at)
        assert due_times == [60, 120, 240, None]
        assert request_row(request_id).status == "failed"


@pytest.mark.parametrize(
    ("channel", "email", "phone"),
    [
        ("email", "ada@fail.test", "+15551234567"),
        ("sms", "ada@example.com", "+15550009999"),
    ],
    ids=["email-fail.test", "sms-9999"],
)
def test_permanent_rejection_fails_at_once(client, clock, channel, email, phone):
    request_id = request_for(client, clock, email=email, phone=phone, channel=channel)

    report = tick(clock)

    assert (report.failed, report.retry_scheduled) == (1, 0)
    req = request_row(request_id)
    assert (req.status, req.attempts, req.next_send_at) == ("failed", 1, None)
    assert req.last_error.startswith(f"{channel}: permanent") and "rejected" in req.last_error
    assert event_types(request_id) == ["queued", "failed", "failed"]
    clock.advance(days=1)
    assert tick(clock).messages == 0


@pytest.mark.parametrize(
    ("email", "phone", "sent_on", "failed_on"),
    [
        ("ada@fail.test", "+15551234567", "sms", "email"),
        ("ada@down.test", "+15551234567", "sms", "email"),
        ("ada@example.com", "+15550009999", "email", "sms"),
        ("ada@example.com", "+15550009997", "email", "sms"),
    ],
    ids=["email-permanent", "email-transient", "sms-permanent", "sms-transient"],
)
def test_both_channels_with_one_failing_counts_as_sent_and_shows_the_failed_channel(
    client, clock, email, phone, sent_on, failed_on
):
    request_id = request_for(client, clock, email=email, phone=phone, channel="both")

    report = tick(clock)

    assert (report.sent, report.messages) == (1, 2)
    req = request_row(request_id)
    assert (req.status, req.sent_at, req.next_send_at is not None) == ("sent", clock(), True)
    assert req.last_error.startswith(f"{failed_on}:")
    assert getattr(req, f"{sent_on}_message_id") and getattr(req, f"{failed_on}_message_id") is None
    assert {(e.type, e.channel) for e in events_of(request_id) if e.type in ("sent", "failed")} == {
        ("sent", sent_on),
        ("failed", failed_on),
    }
    clock.advance(hours=2)
    assert tick(clock).messages == 0  # the slot was sent; the failed channel is not chased


def test_both_channels_failing_fail_the_request(client, clock):
    request_id = request_for(client, clock, email="ada@fail.test", phone="+15550009999", channel="both")
    tick(clock)
    assert request_row(request_id).status == "failed"


def test_a_template_with_an_unknown_variable_fails_the_request_with_a_clear_reason(client, clock):
    broken = MessageTemplate(
        name="Broken",
        channel="email",
        kind="initial",
        subject="Hello",
        html=None,
        text="Hi {{ nickname }}, {{ link }}",
        created_at=clock(),
        updated_at=clock(),
    )
    db.session.add(broken)
    db.session.commit()
    request_id = create_request(client, clock, email_initial_template_id=broken.id)

    report = tick(clock)

    assert (report.failed, report.messages) == (1, 0)
    req = request_row(request_id)
    assert req.status == "failed"
    assert "template" in req.last_error and "nickname" in req.last_error
    final = events_of(request_id, "failed")[-1]
    assert final.detail == (
        "request failed: template error in the email template: cannot render: "
        "'nickname' is undefined; use Retry to send again"
    )
    assert outbox(outcome=None) == []


def test_a_provider_that_crashes_after_the_hand_over_is_never_resent_and_the_tick_goes_on(app, client, clock):
    """Spec §3, §7: an unexpected exception may come after the provider took the message
    (outcome unknown): the slot fails for a person to Retry, never re-sent on its own;
    the other requests of the tick are still sent (spec §6: the failure has its reason)."""
    from app.outbox.provider import OutboxProvider
    from app.providers.base import register

    @register("exploding")
    class ExplodingProvider(OutboxProvider):
        def send(self, message):
            provider_message_id = super().send(message)  # handed over …
            if message.to.endswith("0001"):
                raise RuntimeError("boom")  # … and then a bug
            return provider_message_id

    app.config["SMS_PROVIDER"] = "exploding"
    campaign(clock, delay_days=0, channel="sms", name="SMS")
    first = post_order(client, order_body("evt_1", order_id="1", customer=customer("a1@example.com", "+15550000001")))
    second = post_order(client, order_body("evt_2", order_id="2", customer=customer("a2@example.com", "+15550000002")))
    first, second = first.get_json()["created"][0], second.get_json()["created"][0]

    report = tick(clock)

    assert (report.sent, report.failed, report.retry_scheduled, report.errors) == (1, 1, 0, [])
    req = request_row(first)
    assert (req.status, req.next_send_at) == ("failed", None)
    assert req.last_error == "sms: interrupted, outcome unknown: unexpected provider error: RuntimeError('boom')"
    assert events_of(first, "failed")[-1].detail == (
        "request failed: interrupted, outcome unknown; use Retry to send again"
    )
    assert request_row(second).status == "sent"
    for _ in range(5):
        clock.advance(hours=1)
        tick(clock)
    assert len(outbox(first)) == 1  # handed over once, never again


def test_a_slot_that_cannot_be_prepared_fails_with_its_reason_instead_of_staying_due_silently(app, client, clock):
    """Spec §6: every failure is recorded with a reason. An unknown provider (a typo in
    SMS_PROVIDER outside production) fails the request once, visibly; it does not stay due
    and fail again unseen at every tick."""
    app.config["SMS_PROVIDER"] = "twillio"
    request_id = request_for(client, clock, channel="both")

    report = tick(clock)

    assert (report.failed, report.messages, len(report.errors)) == (1, 0, 1)
    req = request_row(request_id)
    assert (req.status, req.next_send_at, req.claimed_at) == ("failed", None, None)
    reason = "permanent [internal]: could not prepare the message: ValueError(\"unknown sms provider 'twillio'\")"
    assert req.last_error == f"email: {reason} · sms: {reason}"
    assert events_of(request_id, "failed")[-1].detail == (
        "request failed: could not prepare the message: ValueError(\"unknown sms provider 'twillio'\"); "
        "use Retry to send again"
    )
    clock.advance(hours=1)
    assert tick(clock).errors == []  # not picked again
    assert event_types(request_id) == ["failed", "failed", "failed"]
    assert outbox(outcome=None) == []

    app.config["SMS_PROVIDER"] = "outbox"
    from app.lifecycle.services import retry_request

    retry_request(request_row(request_id), clock())
    db.session.commit()
    assert tick(clock).messages == 2
    assert request_row(request_id).status == "sent"


# -- last_error: every channel's current failure -----------------------------------------------

EMAIL_REFUSED = "email: permanent [outbox-rejected]: recipient ada@fail.test rejected (simulated permanent failure)"
SMS_REFUSED = "sms: permanent [outbox-rejected]: recipient +15550009999 rejected (simulated permanent failure)"
SMS_DOWN = "sms: retryable [outbox-unavailable]: provider unavailable (simulated transient failure)"


def test_both_channels_failing_show_both_reasons_email_first(client, clock):
    request_id = request_for(client, clock, email="ada@fail.test", phone="+15550009997", channel="both")

    tick(clock)

    req = request_row(request_id)
    assert req.status == "scheduled"  # the SMS may still go: retried with backoff
    assert req.last_error == f"{EMAIL_REFUSED} · {SMS_DOWN}"


def test_a_later_sms_success_leaves_the_email_failure_standing(app, client, clock):
    # e-mail refused for good; the SMS fails twice (flaky) and goes out on the third attempt
    request_id = request_for(client, clock, email="ada@fail.test", phone="+15550009998", channel="both")
    tick(clock)
    assert request_row(request_id).last_error.startswith(f"{EMAIL_REFUSED} · sms: retryable")
    clock.advance(seconds=app.config["RETRY_BASE_SECONDS"])
    tick(clock)
    clock.advance(seconds=2 * app.config["RETRY_BASE_SECONDS"])

    report = tick(clock)

    assert (report.sent, report.messages) == (1, 1)  # the refused e-mail is not chased
    req = request_row(request_id)
    assert (req.status, req.sms_message_id is not None) == ("sent", True)
    assert req.last_error == EMAIL_REFUSED


def test_a_channel_sent_again_successfully_clears_only_its_own_error(app_factory, clock):
    # two attempts per slot: e-mail (flaky) fails twice, then goes; the SMS is refused for good
    app = app_factory(MAX_SEND_ATTEMPTS=2, RETRY_BASE_SECONDS=60)
    with app.app_context():
        request_id = request_for(app.test_client(), clock, email="ada@flaky.test", phone="+15550009999", channel="both")
        tick(clock)
        email_down = "email: retryable [outbox-unavailable]: provider unavailable (simulated transient failure)"
        assert request_row(request_id).last_error == f"{email_down} · {SMS_REFUSED}"
        clock.advance(seconds=60)
        tick(clock)
        req = request_row(request_id)
        assert (req.status, req.last_error) == ("failed", f"{email_down} · {SMS_REFUSED}")

        from app.lifecycle.services import retry_request

        retry_request(req, clock(), by="merchant")
        db.session.commit()
        assert request_row(request_id).last_error is None  # a person retried: nothing stands

        report = tick(clock)

        assert report.messages == 2  # a person's Retry sends the refused channel again too
        req = request_row(request_id)
        assert (req.status, req.last_error) == ("sent", SMS_REFUSED)  # the e-mail went this time


def test_channel_failures_reads_events_in_time_order_whatever_the_arrival_order():
    from datetime import UTC, datetime

    from app.lifecycle.models import TestimonialRequestEvent as Event
    from app.lifecycle.models import describe_failures
    from app.lifecycle.states import channel_failures

    t0 = datetime(2026, 11, 20, 12, 0, 0, 700000, tzinfo=UTC)

    def ev(id_, type_, seconds, channel=None, key=None, **fields):
        return Event(
            id=id_, type=type_, occurred_at=t0 + timedelta(seconds=seconds), channel=channel, dedupe_key=key, **fields
        )

    sent_email = ev(1, "sent", 0, "email", provider_message_id="m1")
    sent_sms = ev(2, "sent", 0, "sms", provider_message_id="SM1")
    # SendGrid's clock has whole seconds: its drop of m1 reads 0.7 s before we handed m1 over
    dropped = ev(
        3,
        "failed",
        -0.7,
        "email",
        key="sg:1",
        provider="sendgrid",
        provider_message_id="m1",
        error_code="dropped",
        error_kind="address",
        retryable=False,
        detail="Bounced Address",
    )
    processed = ev(4, "sent", 1, "email", key="sg:2", provider="sendgrid", provider_message_id="m1")
    undelivered = ev(
        5,
        "failed",
        60,
        "sms",
        key="tw:1",
        provider="twilio",
        provider_message_id="SM1",
        error_code="30003",
        error_kind="undelivered",
        retryable=False,
        detail="the phone was unreachable",
    )
    summary = ev(6, "failed", 61, detail="request failed: …")
    events = [sent_email, sent_sms, dropped, processed, undelivered, summary]

    expected = {"email": dropped, "sms": undelivered}
    assert channel_failures(events) == channel_failures(events[::-1]) == expected
    assert describe_failures([e.failure for e in expected.values()]) == (
        "email: undelivered [dropped]: Bounced Address (reported by sendgrid) · "
        "sms: undelivered [30003]: the phone was unreachable (reported by twilio)"
    )
    # our next e-mail send clears the e-mail only; a person's retry clears everything
    assert channel_failures([*events, ev(7, "sent", 100, "email", provider_message_id="m2")]) == {"sms": undelivered}
    assert channel_failures([*events, ev(7, "retried", 100)]) == {}
    assert describe_failures([]) is None


# -- the scheduler job: a shell over dispatch_due ------------------------------------------


def test_the_scheduler_job_runs_dispatch_due_at_the_clocks_now_and_records_the_heartbeat(app, client, clock):
    """Spec §1 step 5, §10: the in-process job is app context → dispatch_due(now) → heartbeat
    (the same function ``flask dispatch`` calls); the heartbeat feeds the no-tick alert."""
    import json

    from app.lifecycle.heartbeat import last_tick
    from app.scheduler import JOBS, dispatch_job

    assert ("dispatch", dispatch_job, "SCHEDULER_INTERVAL_SECONDS") in JOBS
    request_id = request_for(client, clock)
    db.session.rollback()

    dispatch_job(app)

    assert request_row(request_id).status == "sent"
    beat = last_tick()
    assert (beat.source, beat.started_at) == ("scheduler", clock())
    assert json.loads(beat.report)["sent"] == 1


def test_a_tick_that_fails_is_logged_and_records_no_heartbeat(app_factory, clock, caplog):
    """Spec §10: a tick that raises is logged (the next one tries again) and leaves no
    heartbeat, so the missing-tick alert fires if it keeps failing."""
    from app.lifecycle.heartbeat import last_tick
    from app.scheduler import dispatch_job

    broken = app_factory(DISPATCH_BATCH_SIZE="many")

    dispatch_job(broken)  # does not raise

    assert "dispatch tick failed" in caplog.text
    with broken.app_context():
        assert last_tick() is None


def test_the_scheduler_does_not_start_when_disabled(app):
    from app.scheduler import start_scheduler

    assert app.config["SCHEDULER_ENABLED"] is False
    assert start_scheduler(app) is None
