"""Steps 7–8: reminder k is due at first sent_at + k × reminder_delay_days, uses the reminder
template, at most max_reminders of them; and every stop condition of spec §5 holds."""

from datetime import timedelta

import pytest

from app.extensions import db
from app.optouts.models import OptOut
from tests.factories import (
    event_types,
    events_of,
    order_body,
    outbox,
    post_order,
    request_row,
    sent_request,
    submit_testimonial,
    tick,
)

DAY = timedelta(days=1)


def slots_sent(request_id):
    return [m.slot for m in outbox(request_id)]


def run_ticks(clock, until, step=timedelta(hours=6)):
    """Tick every ``step`` up to and including ``until`` (a scheduler that keeps running)."""
    while clock() + step <= until:
        clock.advance(seconds=step.total_seconds())
        tick(clock)


# -- when reminders go out ---------------------------------------------------------------


def test_reminder_k_is_due_k_reminder_windows_after_the_first_send(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4, max_reminders=2)
    first_sent = clock()
    req = request_row(request_id)
    assert (req.next_slot, req.next_send_at) == (1, first_sent + 4 * DAY)

    clock.set(first_sent + 4 * DAY - timedelta(seconds=1))
    assert tick(clock).messages == 0
    # Reminder 1 goes out late (the server was down for a day) …
    clock.set(first_sent + 5 * DAY)
    assert tick(clock).sent == 1
    req = request_row(request_id)
    assert (req.status, req.reminder_count, req.sent_at, req.last_sent_at) == ("sent", 1, first_sent, clock())
    # … and reminder 2 is still counted from the first send, not from reminder 1.
    assert (req.next_slot, req.next_send_at) == (2, first_sent + 8 * DAY)
    clock.set(first_sent + 8 * DAY)
    assert tick(clock).sent == 1
    assert request_row(request_id).reminder_count == 2
    assert slots_sent(request_id) == [0, 1, 2]


def test_reminders_use_the_reminder_template_and_read_right_for_each_reminder(client, clock):
    """The default reminders know which reminder they are (reminder_number, reminders_left):
    reminder 1 of 2 is "a quick reminder", reminder 2 of 2 says it is the last one."""
    request_id = sent_request(client, clock, reminder_delay_days=1, max_reminders=2, channel="both")
    clock.advance(days=1)
    tick(clock)
    clock.advance(days=1)
    tick(clock)
    initial_email, initial_sms, first_email, first_sms, last_email, last_sms = sorted(
        outbox(request_id), key=lambda m: (m.slot, m.channel)
    )
    assert initial_email.subject.startswith("How is your")
    assert first_email.subject.startswith("Reminder: ") and last_email.subject.startswith("Last reminder: ")
    assert "a quick reminder" in first_sms.text and "last reminder" not in first_sms.text
    assert "last reminder" in last_sms.text and "quick reminder" not in last_sms.text
    assert "reminder" not in initial_sms.text
    assert "This is the last time we ask" in last_email.text and "last time" not in first_email.text
    # The email layout: the heading, one button to the link, and a plain-text part from the same words.
    assert "Still enjoying your Blue mug?" in first_email.html
    assert "One last ask about your Blue mug" in last_email.html
    token_link = initial_email.text.split("Record my video: ")[1].split()[0]
    assert f'href="{token_link}"' in initial_email.html and initial_email.html.count(">Record my video</a>") == 1
    assert initial_email.text.startswith("How do you like your Blue mug?")
    assert '<img src="https://shop.example/mug.jpg" alt="Blue mug"' in initial_email.html  # the product's picture
    [queued] = [e for e in events_of(request_id, "queued") if e.slot == 1]
    assert queued.detail == "reminder 1 by email, SMS"


@pytest.mark.parametrize("max_reminders", [0, 1, 3])
def test_at_most_max_reminders_are_sent(client, clock, max_reminders):
    request_id = sent_request(client, clock, reminder_delay_days=2, max_reminders=max_reminders, expire_after_days=60)
    run_ticks(clock, clock() + 40 * DAY)
    assert slots_sent(request_id) == list(range(max_reminders + 1))
    req = request_row(request_id)
    assert (req.reminder_count, req.next_send_at, req.status) == (max_reminders, None, "sent")


def test_a_clicked_request_without_a_submission_is_still_reminded(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    client.get(f"/r/{request_row(request_id).token}")
    clock.advance(days=4)
    assert tick(clock).sent == 1
    assert request_row(request_id).status == "clicked"  # a reminder does not undo the click


# -- the customer acts while a message is in flight -----------------------------------------


def provider_acting_during_send(app_factory, action):
    """The outbox provider, except that during each send the customer does
    ``action(client, message)`` through the real pages of another app instance (another
    process's worth of sessions)."""
    from app.outbox.provider import OutboxProvider
    from app.providers.base import register

    other = app_factory()

    @register("customer-acts")
    class CustomerActsProvider(OutboxProvider):
        def send(self, message):
            with other.app_context():
                action(other.test_client(), message)
            return super().send(message)

    return "customer-acts"


def token_of(request_id):
    from sqlalchemy import select

    from app.lifecycle.models import TestimonialRequest

    return db.session.scalar(select(TestimonialRequest.token).where(TestimonialRequest.id == request_id))


def test_a_click_while_the_first_message_is_in_flight_ends_clicked_with_reminders_planned(
    app, app_factory, client, clock
):
    """Spec §2, §4: the link opened before the provider's answer was recorded (queued →
    clicked); the send still settles, and reminders stay planned (§5: no submission)."""
    from tests.factories import create_request

    app.config["EMAIL_PROVIDER"] = provider_acting_during_send(
        app_factory, lambda customer, message: customer.get(f"/r/{token_of(message.request_id)}")
    )
    request_id = create_request(client, clock, delay_days=0, reminder_delay_days=4)

    assert tick(clock).sent == 1

    req = request_row(request_id)
    assert (req.status, req.clicked_at, req.sent_at, req.claim_id) == ("clicked", clock(), clock(), None)
    assert (req.next_slot, req.next_send_at) == (1, clock() + 4 * DAY)
    assert event_types(request_id) == ["queued", "clicked", "sent"]


def test_a_submission_while_a_reminder_is_in_flight_stops_the_reminders(app, app_factory, client, clock):
    """Spec §5, §8: the customer submits while reminder 1 is being handed over; that
    reminder cannot be called back, but it settles without undoing the submission and no
    further reminder is planned."""
    request_id = sent_request(client, clock, reminder_delay_days=4, max_reminders=3, expire_after_days=60)
    app.config["EMAIL_PROVIDER"] = provider_acting_during_send(
        app_factory, lambda customer, message: submit_testimonial(customer, token_of(message.request_id))
    )
    clock.advance(days=4)

    report = tick(clock)

    assert (report.claimed, report.messages) == (1, 1)
    req = request_row(request_id)
    assert (req.status, req.next_send_at, req.claimed_at, req.claim_id) == ("submitted", None, None, None)
    run_ticks(clock, clock() + 40 * DAY)
    assert slots_sent(request_id) == [0, 1]


# -- when they never go out --------------------------------------------------------------


def test_no_reminder_after_a_submission(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    clock.advance(days=1)
    assert submit_testimonial(client, request_row(request_id).token).status_code == 200
    req = request_row(request_id)
    assert (req.status, req.submitted_at, req.next_send_at) == ("submitted", clock(), None)

    run_ticks(clock, clock() + 40 * DAY)

    assert slots_sent(request_id) == [0]
    assert request_row(request_id).status == "submitted"
    assert event_types(request_id)[-1] == "submitted"


def test_request_expires_expire_after_days_after_the_first_send(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4, max_reminders=3, expire_after_days=6)
    first_sent = clock()
    assert request_row(request_id).expires_at == first_sent + 6 * DAY

    clock.set(first_sent + 4 * DAY)
    assert tick(clock).sent == 1  # reminder 1, before expiry
    clock.set(first_sent + 6 * DAY - timedelta(seconds=1))
    assert tick(clock).expired == 0
    clock.set(first_sent + 6 * DAY)
    assert tick(clock).expired == 1

    req = request_row(request_id)
    assert (req.status, req.next_send_at) == ("expired", None)
    [expired] = events_of(request_id, "expired")
    assert expired.occurred_at == clock()
    run_ticks(clock, clock() + 30 * DAY)
    assert slots_sent(request_id) == [0, 1]


def test_a_reminder_due_at_the_expiry_moment_is_not_sent(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4, max_reminders=2, expire_after_days=8)
    clock.advance(days=4)
    tick(clock)
    clock.advance(days=4)  # reminder 2 and expiry both due now
    report = tick(clock)
    assert (report.expired, report.messages) == (1, 0)
    assert slots_sent(request_id) == [0, 1]


def test_a_request_expires_even_when_the_scheduler_was_down_past_the_expiry(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4, expire_after_days=3)
    clock.advance(days=20)
    report = tick(clock)
    assert (report.expired, report.messages) == (1, 0)
    assert request_row(request_id).status == "expired"


def test_a_retry_of_a_failed_reminder_after_the_expiry_expires_instead_of_sending(client, clock):
    """Spec §9: a failed send is retried only while still actionable; §5: an expired
    request gets no reminder, even one a person asked to retry."""
    from app.lifecycle.services import change_contact, retry_request

    request_id = sent_request(client, clock, reminder_delay_days=4, expire_after_days=10)
    change_contact(request_row(request_id), clock(), email="ada@fail.test", phone=None)
    db.session.commit()
    clock.advance(days=4)
    assert tick(clock).failed == 1  # reminder 1 refused for good
    assert request_row(request_id).status == "failed"
    clock.advance(days=7)  # past the expiry

    retry_request(request_row(request_id), clock())
    db.session.commit()
    report = tick(clock)

    assert (report.expired, report.messages) == (1, 0)
    req = request_row(request_id)
    assert (req.status, req.next_send_at) == ("expired", None)
    assert event_types(request_id)[-2:] == ["retried", "expired"]
    assert slots_sent(request_id) == [0]


def test_no_reminder_after_the_order_is_cancelled(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    clock.advance(days=1)
    post_order(client, order_body("evt_cancel", event_type="order.cancelled", items=[]))
    run_ticks(clock, clock() + 40 * DAY)
    assert slots_sent(request_id) == [0]
    assert request_row(request_id).status == "cancelled"


def test_no_reminder_to_a_customer_who_opted_out(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    # An opt-out recorded elsewhere (a provider's unsubscribe event, the merchant).
    db.session.add(OptOut(channel="email", contact="ada@example.com", source="merchant", created_at=clock()))
    db.session.commit()
    clock.advance(days=4)

    report = tick(clock)

    assert (report.cancelled, report.messages) == (1, 0)
    req = request_row(request_id)
    assert (req.status, req.next_send_at) == ("cancelled", None)
    assert events_of(request_id, "cancelled")[0].detail == "customer opted out"
    assert slots_sent(request_id) == [0]


def test_unsubscribe_link_stops_reminders_at_once(client, clock):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    response = client.post(f"/u/{request_row(request_id).token}")
    assert response.status_code == 200
    assert request_row(request_id).status == "cancelled"
    run_ticks(clock, clock() + 10 * DAY)
    assert slots_sent(request_id) == [0]


def test_a_paused_campaign_holds_reminders_and_sends_them_after_resume(client, clock, cli):
    request_id = sent_request(client, clock, reminder_delay_days=4, max_reminders=2)
    campaign_id = request_row(request_id).campaign_id
    first_sent = clock()
    assert cli("campaigns", "pause", str(campaign_id))["status"] == "paused"

    clock.set(first_sent + 6 * DAY)
    assert tick(clock).messages == 0
    req = request_row(request_id)
    assert (req.status, req.next_send_at) == ("sent", first_sent + 4 * DAY)  # held, not dropped

    assert cli("campaigns", "resume", str(campaign_id))["status"] == "active"
    assert tick(clock).sent == 1
    assert slots_sent(request_id) == [0, 1]
    assert request_row(request_id).next_send_at == first_sent + 8 * DAY


def test_a_paused_campaign_holds_the_first_message_too(client, clock, cli):
    from tests.factories import create_request

    request_id = create_request(client, clock, delay_days=0)
    cli("campaigns", "pause", str(request_row(request_id).campaign_id))
    assert tick(clock).messages == 0
    assert request_row(request_id).status == "scheduled"
    cli("campaigns", "resume", str(request_row(request_id).campaign_id))
    assert tick(clock).sent == 1


def test_a_campaign_paused_while_a_tick_runs_holds_the_slots_it_has_not_claimed(app, client, clock, cli):
    """Spec §5: nothing goes once the campaign is paused, not even a slot the running
    tick had already picked as due; the held slot goes after the resume."""
    from sqlalchemy import update

    from app.campaigns.models import Campaign
    from app.outbox.provider import OutboxProvider
    from app.providers.base import register
    from tests.factories import campaign

    @register("pausing")
    class PausingProvider(OutboxProvider):
        """The merchant presses Pause while the tick sends its first message."""

        def send(self, message):
            with db.engine.begin() as conn:
                conn.execute(update(Campaign).values(status="paused"))
            return super().send(message)

    app.config["EMAIL_PROVIDER"] = "pausing"
    # One sender: the second slot is claimed only after the first send (claims are made as
    # senders free up; a claimed slot is already being handed over).
    app.config["SEND_CONCURRENCY"] = 1
    created = campaign(clock, delay_days=0)
    ids = []
    for n in (1, 2):
        customer = {"email": f"c{n}@example.com", "first_name": "Ada"}
        ids += post_order(client, order_body(f"evt_{n}", order_id=str(n), customer=customer)).get_json()["created"]
    due = request_row(ids[1]).next_send_at

    report = tick(clock)

    assert (report.due, report.sent, report.messages) == (2, 1, 1)
    held = request_row(ids[1])
    assert (held.status, held.next_send_at, held.claimed_at) == ("scheduled", due, None)
    assert event_types(ids[1]) == []
    app.config["EMAIL_PROVIDER"] = "outbox"
    cli("campaigns", "resume", str(created.id))
    assert tick(clock).sent == 1
    assert [m.request_id for m in outbox()] == ids


def test_an_archived_campaign_stops_its_requests_for_good(client, clock, cli):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    campaign_id = request_row(request_id).campaign_id

    archived = cli("campaigns", "archive", str(campaign_id))

    assert (archived["status"], archived["cancelled_requests"]) == ("archived", 1)
    req = request_row(request_id)
    assert (req.status, req.next_send_at) == ("cancelled", None)
    assert f"campaign {campaign_id} archived" in events_of(request_id, "cancelled")[0].detail
    run_ticks(clock, clock() + 40 * DAY)
    assert slots_sent(request_id) == [0]


def test_reminders_switched_off_after_the_first_send_are_not_sent(client, clock, cli):
    request_id = sent_request(client, clock, reminder_delay_days=4)
    cli("campaigns", "update", str(request_row(request_id).campaign_id), "--no-reminders")
    assert request_row(request_id).next_send_at is None
    run_ticks(clock, clock() + 20 * DAY)
    assert slots_sent(request_id) == [0]
    assert request_row(request_id).status == "sent"


def test_a_reminder_already_due_when_reminders_are_switched_off_is_not_sent(client, clock):
    """The tick asks the campaign's settings at send time, not only at planning time."""
    from app.campaigns.models import Campaign

    request_id = sent_request(client, clock, reminder_delay_days=4)
    clock.advance(days=4)
    # Switched off behind the services' back (as an old process or a manual SQL fix would).
    campaign = db.session.get(Campaign, request_row(request_id).campaign_id)
    campaign.reminder_enabled = False
    db.session.commit()
    report = tick(clock)
    assert (report.stopped, report.messages) == (1, 0)
    assert request_row(request_id).next_send_at is None


def test_an_edited_reminder_delay_applies_to_slots_not_yet_sent(client, clock, cli):
    request_id = sent_request(client, clock, reminder_delay_days=4, max_reminders=3, expire_after_days=60)
    first_sent = clock()
    campaign_id = str(request_row(request_id).campaign_id)
    clock.advance(days=4)
    tick(clock)  # reminder 1 at first_sent + 4 days

    cli("campaigns", "update", campaign_id, "--reminder-delay-days", "7")

    # Reminder 2 is now 2 × 7 days after the first send; reminder 1 stays as sent.
    assert request_row(request_id).next_send_at == first_sent + 14 * DAY
    clock.set(first_sent + 8 * DAY)
    assert tick(clock).messages == 0
    clock.set(first_sent + 14 * DAY)
    assert tick(clock).sent == 1
    assert request_row(request_id).next_send_at == first_sent + 21 * DAY
    [reminder_1] = [m for m in outbox(request_id) if m.slot == 1]
    assert reminder_1.created_at == first_sent + 4 * DAY


def test_lowering_max_reminders_stops_the_remaining_ones(client, clock, cli):
    request_id = sent_request(client, clock, reminder_delay_days=2, max_reminders=3)
    clock.advance(days=2)
    tick(clock)
    cli("campaigns", "update", str(request_row(request_id).campaign_id), "--max-reminders", "1")
    assert request_row(request_id).next_send_at is None
    run_ticks(clock, clock() + 20 * DAY)
    assert slots_sent(request_id) == [0, 1]


def test_an_edited_delay_replans_requests_not_yet_sent(client, clock, cli):
    from tests.factories import create_request

    request_id = create_request(client, clock, delay_days=5)
    trigger = request_row(request_id).trigger_at
    cli("campaigns", "update", str(request_row(request_id).campaign_id), "--delay-days", "2")
    assert request_row(request_id).next_send_at == trigger + 2 * DAY


def test_an_edited_expiry_applies_to_links_still_open_counted_from_their_first_send(client, clock, cli):
    """Edits apply to what has not happened yet: a link still open follows the campaign's
    new expiry (from its first send); a request already expired stays expired."""
    request_id = sent_request(client, clock, reminder_delay_days=30, max_reminders=1, expire_after_days=14)
    first_sent = clock()
    campaign_id = str(request_row(request_id).campaign_id)

    cli("campaigns", "update", campaign_id, "--expire-after-days", "30")
    assert request_row(request_id).expires_at == first_sent + 30 * DAY
    clock.set(first_sent + 20 * DAY)
    tick(clock)
    assert request_row(request_id).status == "sent"  # the old expiry (14 days) has passed: still open

    cli("campaigns", "update", campaign_id, "--expire-after-days", "10")
    assert request_row(request_id).expires_at == first_sent + 10 * DAY
    assert tick(clock).expired == 1
    assert request_row(request_id).status == "expired"

    cli("campaigns", "update", campaign_id, "--expire-after-days", "60")
    assert request_row(request_id).status == "expired"
    assert request_row(request_id).expires_at == first_sent + 10 * DAY


def test_after_a_long_pause_reminders_are_not_sent_back_to_back(client, clock, cli):
    request_id = sent_request(client, clock, reminder_delay_days=2, max_reminders=2)
    first_sent = clock()
    cli("campaigns", "pause", str(request_row(request_id).campaign_id))
    clock.set(first_sent + 10 * DAY)  # both reminder windows passed while paused
    cli("campaigns", "resume", str(request_row(request_id).campaign_id))
    assert tick(clock).sent == 1
    req = request_row(request_id)
    assert (req.reminder_count, req.next_slot) == (1, 2)
    # Reminder 2's window (first send + 4 days) is long past, yet it waits a day.
    assert req.next_send_at == clock() + timedelta(days=1)
    clock.advance(hours=23)
    assert tick(clock).messages == 0
    clock.advance(hours=1)
    assert tick(clock).sent == 1
    assert slots_sent(request_id) == [0, 1, 2]
