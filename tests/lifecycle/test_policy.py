"""The scheduling policy (pure functions of their inputs and now) and the request state
machine (the transition table and the one function that makes a move).

Spec §2 (initial send = trigger + delay, reminder k = first sent_at + k × delay, all UTC),
§5 (when a reminder is allowed; the hard stops), §6 (exponential backoff, bounded
attempts) and the status path of §2 with its terminal alternatives.

Send windows have their own tests in test_send_windows.py."""

from datetime import UTC, datetime, timedelta
from itertools import product
from types import SimpleNamespace

import pytest

from app.lifecycle import policy
from app.lifecycle.policy import ReminderSettings, SlotDecision
from app.lifecycle.states import (
    CANCELLABLE,
    OPEN_FOR_SUBMISSION,
    SENDABLE,
    STATUSES,
    TERMINAL,
    TRANSITIONS,
    TransitionError,
    add_event,
    can_move,
    transition,
)
from tests.factories import create_request, request_row

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ON = ReminderSettings(reminder_enabled=True, reminder_delay_days=4, max_reminders=2)
OFF = ReminderSettings(reminder_enabled=False, reminder_delay_days=4, max_reminders=2)

# -- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("delay_days", "expected"), [(0, T0), (3, T0 + 3 * DAY), (365, T0 + 365 * DAY)])
def test_initial_send_is_the_trigger_time_plus_the_delay(delay_days, expected):
    assert policy.initial_due_at(T0, delay_days) == expected


@pytest.mark.parametrize(
    ("k", "delay", "expected"),
    [
        (1, 4, T0 + 4 * DAY),
        (2, 4, T0 + 8 * DAY),
        (3, 1, T0 + 3 * DAY),
        (2, 7, T0 + 14 * DAY),
    ],
)
def test_reminder_k_is_k_windows_after_the_first_send(k, delay, expected):
    assert policy.reminder_due_at(T0, k, delay) == expected


def test_expiry_is_counted_from_the_first_send():
    assert policy.expires_at(T0, 30) == T0 + 30 * DAY


@pytest.mark.parametrize(("attempts", "expected_seconds"), [(1, 300), (2, 600), (3, 1200), (4, 2400)])
def test_attempt_n_plus_1_is_due_base_times_2_to_the_n_minus_1_after_attempt_n_failed(attempts, expected_seconds):
    assert policy.retry_due_at(T0, attempts, 300) == T0 + timedelta(seconds=expected_seconds)


@pytest.mark.parametrize(
    ("retryable", "attempts", "max_attempts", "expected"),
    [
        (True, 1, 3, True),
        (True, 2, 3, True),
        (True, 3, 3, False),
        (True, 4, 3, False),
        (False, 1, 3, False),
        (True, 1, 1, False),
    ],
)
def test_should_retry(retryable, attempts, max_attempts, expected):
    assert policy.should_retry(retryable, attempts, max_attempts) is expected


# -- reminders (spec §5) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "reminder_count", "submitted", "expected"),
    [
        (ON, 0, False, True),
        (ON, 1, False, True),
        (ON, 2, False, False),  # the maximum was sent
        (ON, 0, True, False),  # submitted
        (OFF, 0, False, False),  # reminders off
        (ReminderSettings(True, 4, 0), 0, False, False),  # none allowed
    ],
)
def test_reminder_allowed(settings, reminder_count, submitted, expected):
    assert policy.reminder_allowed(settings, reminder_count, submitted) is expected


@pytest.mark.parametrize(
    ("slot_sent", "settings", "expected"),
    [
        (0, ON, (1, T0 + 4 * DAY)),
        (1, ON, (2, T0 + 8 * DAY)),
        (2, ON, None),
        (0, OFF, None),
        (0, ReminderSettings(True, 4, 0), None),
        (2, ReminderSettings(True, 3, 5), (3, T0 + 9 * DAY)),
    ],
)
def test_the_slot_after_a_sent_slot(slot_sent, settings, expected):
    assert policy.next_slot_after(slot_sent, T0, settings) == expected


def test_reminder_settings_are_read_from_a_campaign():
    campaign = SimpleNamespace(reminder_enabled=True, reminder_delay_days=5, max_reminders=1)
    assert ReminderSettings.of(campaign) == ReminderSettings(True, 5, 1)


def decide(
    slot=1,
    status="sent",
    campaign_status="active",
    settings=ON,
    reminder_count=0,
    expires=T0 + 30 * DAY,
    now=T0 + 4 * DAY,
):
    return policy.decide_slot(
        slot=slot,
        status=status,
        campaign_status=campaign_status,
        settings=settings,
        reminder_count=reminder_count,
        request_expires_at=expires,
        now=now,
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"slot": 0, "status": "scheduled", "expires": None}, SlotDecision("send")),
        ({"slot": 0, "status": "scheduled", "settings": OFF, "expires": None}, SlotDecision("send")),
        ({}, SlotDecision("send")),
        ({"status": "clicked"}, SlotDecision("send")),
        ({"campaign_status": "archived"}, SlotDecision("stop", "campaign archived")),
        ({"slot": 0, "campaign_status": "archived"}, SlotDecision("stop", "campaign archived")),
        ({"campaign_status": "paused"}, SlotDecision("hold", "campaign paused")),
        ({"slot": 0, "status": "scheduled", "campaign_status": "paused"}, SlotDecision("hold", "campaign paused")),
        ({"slot": 0, "status": "scheduled", "campaign_status": "draft"}, SlotDecision("hold", "campaign draft")),
        ({"status": "submitted"}, SlotDecision("stop", "already submitted")),
        ({"now": T0 + 30 * DAY}, SlotDecision("expire", "expired before the reminder was due")),
        ({"now": T0 + 31 * DAY}, SlotDecision("expire", "expired before the reminder was due")),
        ({"settings": OFF}, SlotDecision("stop", "no reminder allowed by the campaign's settings")),
        ({"slot": 3, "reminder_count": 2}, SlotDecision("stop", "no reminder allowed by the campaign's settings")),
    ],
    ids=[
        "initial",
        "initial-with-reminders-off",
        "reminder",
        "reminder-after-click",
        "archived",
        "initial-archived",
        "paused",
        "initial-paused",
        "initial-draft",
        "submitted",
        "at-expiry",
        "past-expiry",
        "reminders-off",
        "maximum-reached",
    ],
)
def test_decide_slot(kwargs, expected):
    """Spec §5: a reminder only while allowed; hard stops for submitted, expired, archived;
    a paused campaign holds its slots (it may be resumed)."""
    assert decide(**kwargs) == expected


# -- the state machine -----------------------------------------------------------------------

# The moves the lifecycle makes, as the spec describes them (§2, §5, §6, §7 and §9).
ALLOWED = {
    ("scheduled", "queued"),  # a tick claimed the initial slot
    ("scheduled", "cancelled"),
    ("scheduled", "failed"),
    ("scheduled", "submitted"),
    ("queued", "sent"),
    ("queued", "clicked"),  # sent (the link was opened before the send finished)
    ("queued", "scheduled"),  # the initial send failed and will be retried
    ("queued", "failed"),
    ("queued", "cancelled"),
    ("queued", "submitted"),
    ("sent", "sent"),
    ("sent", "clicked"),
    ("sent", "submitted"),
    ("sent", "failed"),
    ("sent", "expired"),
    ("sent", "cancelled"),
    ("clicked", "clicked"),
    ("clicked", "submitted"),
    ("clicked", "failed"),
    ("clicked", "expired"),
    ("clicked", "cancelled"),
    ("failed", "scheduled"),
    ("failed", "sent"),
    ("failed", "clicked"),  # a person pressed Retry
    ("failed", "submitted"),
    ("failed", "expired"),
    ("failed", "cancelled"),
}


@pytest.mark.parametrize(
    ("current", "target"), list(product(STATUSES, STATUSES)), ids=[f"{a}->{b}" for a, b in product(STATUSES, STATUSES)]
)
def test_transition_table(current, target):
    assert can_move(current, target) is ((current, target) in ALLOWED)


def test_the_table_covers_every_status_and_terminal_statuses_have_no_way_out():
    assert set(TRANSITIONS) == set(STATUSES)
    assert TERMINAL == {"submitted", "expired", "cancelled"}
    for status in TERMINAL:
        assert TRANSITIONS[status] == set()
    assert not can_move("unknown", "sent")


def test_status_groups_agree_with_the_table():
    assert all(can_move(s, "cancelled") for s in CANCELLABLE)
    assert all(can_move(s, "submitted") for s in OPEN_FOR_SUBMISSION)
    assert not set(SENDABLE) & TERMINAL


def test_transition_moves_a_request_and_sets_values_in_one_statement(app, client, clock):
    request_id = create_request(client, clock)
    assert transition(request_id, "scheduled", "queued", claim_id="abc") is True
    req = request_row(request_id)
    assert (req.status, req.claim_id) == ("queued", "abc")


def test_transition_returns_false_when_someone_else_moved_first(app, client, clock):
    request_id = create_request(client, clock)
    assert transition(request_id, "scheduled", "queued") is True
    assert transition(request_id, "scheduled", "queued") is False  # the loser of a race
    assert transition(request_id, ("scheduled", "sent"), "cancelled") is False
    assert request_row(request_id).status == "queued"


def test_transition_honours_extra_conditions(app, client, clock):
    from app.lifecycle.models import TestimonialRequest

    request_id = create_request(client, clock)
    assert transition(request_id, "scheduled", "queued", where=(TestimonialRequest.claim_id == "other",)) is False
    assert request_row(request_id).status == "scheduled"


@pytest.mark.parametrize(
    ("expected", "target"),
    [
        ("scheduled", "sent"),
        ("submitted", "scheduled"),
        ("cancelled", "sent"),
        (("sent", "expired"), "clicked"),
    ],
)
def test_transition_refuses_a_move_the_table_forbids(app, client, clock, expected, target):
    request_id = create_request(client, clock)
    with pytest.raises(TransitionError):
        transition(request_id, expected, target)
    assert request_row(request_id).status == "scheduled"


def test_add_event_keeps_the_latest_event_time(app, client, clock):
    from app.extensions import db

    request_id = create_request(client, clock)
    add_event(request_id, "clicked", T0 + DAY)
    add_event(request_id, "opened", T0)  # a late provider event from earlier
    db.session.commit()
    assert request_row(request_id).last_event_at == T0 + DAY
