"""Scheduling policy as pure functions of their inputs and ``now`` (spec §2, §5, §6).

Nothing here touches the database or the clock; the dispatcher and the services ask these
functions and then write what they answered.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from app.campaigns.models import ACTIVE, ARCHIVED
from app.lifecycle.states import SUBMITTED


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


# The least time between two messages about one request (politeness after a long pause).
MIN_REMINDER_GAP = timedelta(days=1)


def next_slot_after(
    slot_sent: int, first_sent_at: datetime, settings: ReminderSettings, last_sent_at: datetime | None = None
):
    """(slot, due_at) of the slot after ``slot_sent`` was sent, or None when none follows.

    Reminder k is due at first sent_at + k × delay (spec §2). Only when a slot went out
    very late (a campaign paused for weeks, then resumed) would that put two messages back
    to back; the next one then waits at least MIN_REMINDER_GAP after the last.
    """
    following = slot_sent + 1
    if not reminder_allowed(settings, following - 1, submitted=False):
        return None
    due = reminder_due_at(first_sent_at, following, settings.reminder_delay_days)
    if last_sent_at is not None:
        due = max(due, last_sent_at + MIN_REMINDER_GAP)
    return following, due


@dataclass(frozen=True)
class SlotDecision:
    action: str  # send | hold | expire | stop
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
    - A campaign that is not active (paused, or back to draft) holds the slot: nothing is
      sent while it is paused (spec §5), and the slot goes after a resume. The tick picks
      only active campaigns' slots, but a merchant may pause one while a tick is running.
    """
    if campaign_status == ARCHIVED:
        return SlotDecision("stop", "campaign archived")
    if campaign_status != ACTIVE:
        return SlotDecision("hold", f"campaign {campaign_status}")
    if status == SUBMITTED:
        return SlotDecision("stop", "already submitted")
    if slot == 0:
        return SlotDecision("send")
    if request_expires_at is not None and now >= request_expires_at:
        return SlotDecision("expire", "expired before the reminder was due")
    if not reminder_allowed(settings, reminder_count, submitted=False):
        return SlotDecision("stop", "no reminder allowed by the campaign's settings")
    return SlotDecision("send")


@dataclass(frozen=True)
class SlotPlan:
    """What the dispatcher does with one claimed due slot (``plan_due_slot``)."""

    action: str  # send | hold | expire | stop | cancel | defer
    reason: str | None = None
    channels: tuple = ()  # send: the channels to send on (opted-out ones left out)
    opening: datetime | None = None  # defer: when every channel's window is open
    closed: tuple = ()  # defer: (channel or None for the shop's, SendWindow) pairs holding the slot


def plan_due_slot(decision: SlotDecision, channels, opted_out, windows, now, tz, *, shop_window=None) -> SlotPlan:
    """The whole decision for a due slot, from facts read by the claim.

    ``decision`` is ``decide_slot``'s answer; ``opted_out`` the channels on which the
    customer has opted out; ``windows`` ``{channel: SendWindow or None}`` for the
    channels still in play; ``shop_window`` the shop's own quiet hours, which hold every
    channel. A slot due inside quiet hours moves to the moment every one of its channels
    may send (channel "both" sends its channels together).
    """
    if decision.action != "send":
        return SlotPlan(decision.action, decision.reason)
    channels = tuple(c for c in channels if c not in opted_out)
    if not channels:
        return SlotPlan("cancel", "customer opted out")
    restricting = [w for c, w in windows.items() if c in channels and w is not None]
    restricting += [shop_window] if shop_window is not None else []
    opening = defer_to_windows(now, restricting, tz)
    if opening is None:  # windows that never overlap: the shop's quiet hours first, else the first
        opening = defer_to_window(now, shop_window or restricting[0], tz)
    if opening == now:
        return SlotPlan("send", channels=channels)
    closed = tuple((c, w) for c, w in windows.items() if c in channels and w is not None and not in_window(now, w, tz))
    if shop_window is not None and not in_window(now, shop_window, tz):
        closed += ((None, shop_window),)  # None: the shop's, not a channel's
    return SlotPlan("defer", opening=opening, closed=closed, channels=channels)


# -- send windows (quiet hours) ---------------------------------------------------------
#
# A window is the part of the day, in the shop's time zone, when a channel may send:
# "09:00-20:00". One whose end is earlier than its start crosses midnight ("22:00-06:00").
# No window (None) means any time. Times are wall-clock times, so a window keeps opening
# at 09:00 local time across daylight-saving changes; everything stored stays UTC.

WINDOW_PATTERN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")
ANY_TIME = ("", "any", "anytime", "any time", "always", "none")


class WindowInvalid(ValueError):
    """A send window that cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class SendWindow:
    start: int  # minutes after local midnight, 0–1439: the window opens
    end: int  # minutes after local midnight, 1–1440: the window closes (exclusive)

    @classmethod
    def parse(cls, text):
        """``"09:00-20:00"`` → SendWindow; ``None``/``"any"`` → None (no restriction)."""
        if text is None or str(text).strip().lower() in ANY_TIME:
            return None
        match = WINDOW_PATTERN.match(str(text))
        if not match:
            raise WindowInvalid(f"{text!r} is not a window: use HH:MM-HH:MM (e.g. 09:00-20:00) or 'any'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise WindowInvalid(f"{text!r} has a time that does not exist (00:00 to 23:59; 24:00 only as an end)")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end == start:
            raise WindowInvalid(f"{text!r} opens and closes at the same time: use 'any' to send at any time")
        return cls(start, end)

    def contains(self, minute_of_day):
        if self.start < self.end:
            return self.start <= minute_of_day < self.end
        return minute_of_day >= self.start or minute_of_day < self.end  # crosses midnight

    def text(self, dash="-"):
        return f"{_hhmm(self.start)}{dash}{_hhmm(self.end)}"

    def quiet_hours(self):
        """The hours outside the window, for people: "20:00–09:00"."""
        return f"{_hhmm(self.end % 1440)}–{_hhmm(self.start)}"

    def __str__(self):
        return self.text()


def _hhmm(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def normalize_window(text):
    """The canonical stored form of a window setting: "09:00-20:00", or None for any time."""
    window = SendWindow.parse(text)
    return window.text() if window else None


def windows_overlap(a, b):
    """True when two windows share at least one minute of the day (None is all day)."""
    if a is None or b is None:
        return True
    return any(a.contains(m) and b.contains(m) for m in range(1440))


def quiet_hours_window(text):
    """The shop's quiet hours (Settings: no message on any channel of any campaign, on top
    of each campaign's own send windows, docs/send-windows.md) "21:00-08:00" → the
    SendWindow when messages may go (08:00-21:00); None when there are none. Raises
    WindowInvalid for text that is not HH:MM-HH:MM."""
    if text is None or not str(text).strip() or str(text).strip().lower() in ("none", "any"):
        return None
    quiet = SendWindow.parse(text)
    if quiet is None:
        return None
    if quiet.start == quiet.end % 1440:
        raise WindowInvalid("quiet hours all day long would never send anything")
    return SendWindow(quiet.end % 1440, quiet.start or 1440)


def _opening_on(day, window, tz):
    """The UTC instant the window opens on local date ``day`` (the earliest one if the
    wall time is repeated when clocks go back; just after the jump if it is skipped)."""
    local = datetime.combine(day, time(window.start // 60, window.start % 60), tzinfo=tz)
    return local.astimezone(UTC)


def in_window(moment_utc, window, tz):
    if window is None:
        return True
    local = moment_utc.astimezone(tz)
    return window.contains(local.hour * 60 + local.minute)


def defer_to_window(due_utc, window, tz):
    """The earliest instant at or after ``due_utc`` inside ``window`` (shop time ``tz``).

    A time inside the window is returned unchanged; one inside quiet hours moves to the
    window's next opening. Works for windows that cross midnight and on the days clocks
    change: a window whose opening wall time is skipped opens when the clock jumps into
    it; a repeated wall time opens at its first occurrence.
    """
    if window is None or in_window(due_utc, window, tz):
        return due_utc
    day = due_utc.astimezone(tz).date()
    # Today's opening or tomorrow's; one day more when a window vanishes in a DST jump.
    for offset in range(3):
        opening = _opening_on(day + timedelta(days=offset), window, tz)
        if opening < due_utc or not in_window(opening, window, tz):
            continue
        # A skipped wall time maps past the jump: step back to the jump itself.
        while opening - timedelta(minutes=1) >= due_utc and in_window(opening - timedelta(minutes=1), window, tz):
            opening -= timedelta(minutes=1)
        return opening
    raise AssertionError(f"no opening of window {window} after {due_utc}")  # unreachable


def defer_to_windows(due_utc, windows, tz):
    """The earliest instant at or after ``due_utc`` inside every window at once.

    A slot sent on several channels together (channel "both") waits until all of its
    channels may send. Returns None when the windows never overlap.
    """
    moment = due_utc
    for _ in range(8):
        later = max(defer_to_window(moment, w, tz) for w in windows) if windows else moment
        if later == moment:
            return moment
        moment = later
    return None
