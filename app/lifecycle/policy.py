"""Scheduling policy as pure functions of their inputs and ``now`` (spec §2, §5, §6).

Nothing here touches the database or the clock; the dispatcher and the services ask these
functions and then write what they answered.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ReminderSettings:
    reminder_enabled: bool
    reminder_delay_days: int
    max_reminders: int

    @classmethod
    def of(cls, campaign):
        return cls(campaign.reminder_enabled, campaign.reminder_delay_days, campaign.max_reminders)


def initial_due_at(trigger_at: datetime, delay_days: int) -> datetime:
    """Initial send time = trigger event time + delay (spec §2). A past time is simply due."""
    return trigger_at + timedelta(days=delay_days)


def reminder_due_at(first_sent_at: datetime, k: int, reminder_delay_days: int) -> datetime:
    """Reminder k is due k reminder windows after the first send (spec §2, §5)."""
    return first_sent_at + timedelta(days=k * reminder_delay_days)


def expires_at(first_sent_at: datetime, expire_after_days: int) -> datetime:
    return first_sent_at + timedelta(days=expire_after_days)


def retry_due_at(failed_at: datetime, attempts: int, base_seconds: int) -> datetime:
    """Attempt n+1 is due at the failure of attempt n + base × 2^(n-1) (spec §6)."""
    return failed_at + timedelta(seconds=base_seconds * 2 ** (attempts - 1))


def should_retry(retryable: bool, attempts: int, max_attempts: int) -> bool:
    return retryable and attempts < max_attempts


def reminder_allowed(settings: ReminderSettings, reminder_count: int, submitted: bool) -> bool:
    """Spec §5: reminders on, fewer than the maximum sent, no submission yet."""
    return settings.reminder_enabled and reminder_count < settings.max_reminders and not submitted


def next_slot_after(slot_sent: int, first_sent_at: datetime, settings: ReminderSettings):
    """(slot, due_at) of the slot after ``slot_sent`` was sent, or None when none follows."""
    following = slot_sent + 1
    if not reminder_allowed(settings, following - 1, submitted=False):
        return None
    return following, reminder_due_at(first_sent_at, following, settings.reminder_delay_days)


@dataclass(frozen=True)
class SlotDecision:
    action: str  # send | expire | stop
    reason: str | None = None


def decide_slot(
    *,
    slot: int,
    status: str,
    campaign_status: str,
    settings: ReminderSettings,
    reminder_count: int,
    request_expires_at: datetime | None,
    now: datetime,
) -> SlotDecision:
    """What to do with a slot that has come due.

    - The initial slot (0) is sent while the campaign is active.
    - A reminder (slot ≥ 1) is sent only when spec §5 allows it at this moment: the
      campaign may have been edited (reminders off, fewer allowed) since it was planned.
    - A request past its expiry time expires instead of being reminded.
    Paused campaigns never reach this function: their slots are held, not decided.
    """
    if campaign_status == "archived":
        return SlotDecision("stop", "campaign archived")
    if status == "submitted":
        return SlotDecision("stop", "already submitted")
    if slot == 0:
        return SlotDecision("send")
    if request_expires_at is not None and now >= request_expires_at:
        return SlotDecision("expire", "expired before the reminder was due")
    if not reminder_allowed(settings, reminder_count, submitted=False):
        return SlotDecision("stop", "no reminder allowed by the campaign's settings")
    return SlotDecision("send")
