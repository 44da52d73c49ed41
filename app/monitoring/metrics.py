"""Monitoring figures (spec §8, §10) over a period of UTC days, and the SLO observations.

The period's figures come from ``daily_stats`` (per-day counts kept by triggers, see
``models.DailyStat``); the SLO windows (last hour, last day) read ``slot_sends`` and
``order_events`` through their indexes. No row is loaded into Python.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select

from app.campaigns.models import Campaign
from app.extensions import db
from app.input_guard import database_id
from app.intake.models import OrderEvent
from app.lifecycle.heartbeat import DispatchTick
from app.lifecycle.models import SlotSend
from app.monitoring import slo
from app.monitoring.models import DailyStat
from app.monitoring.rollup import as_date

PRESETS = {"7": 7, "30": 30, "90": 90}
DEFAULT_PRESET = "30"
MAX_CUSTOM_DAYS = 366
ALERT_WINDOW = timedelta(hours=1)


class PeriodInvalid(ValueError):
    """A period the merchant asked for that cannot be shown (a 400 with this message)."""


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, aware UTC
    end: datetime  # exclusive
    key: str  # "7" | "30" | "90" | "custom"
    first_day: date
    last_day: date

    @property
    def days(self):
        return [self.first_day + timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)]

    @property
    def label(self):
        if self.key in PRESETS:
            return f"last {PRESETS[self.key]} days"
        return f"{self.first_day:%d %b %Y} – {self.last_day:%d %b %Y}"


def _midnight(day):
    return datetime.combine(day, time(0), tzinfo=UTC)


def parse_period(args, now):
    """The period from query arguments: ``period=7|30|90`` (calendar days up to today,
    UTC) or ``from``/``to`` dates (YYYY-MM-DD, both included). Raises PeriodInvalid."""
    key = (args.get("period") or "").strip()
    start_text, end_text = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if not key:
        key = "custom" if start_text or end_text else DEFAULT_PRESET
    today = now.astimezone(UTC).date()
    if key in PRESETS:
        first = today - timedelta(days=PRESETS[key] - 1)
        return Period(_midnight(first), now, key, first, today)
    if key != "custom":
        raise PeriodInvalid("Choose a period of 7, 30 or 90 days, or a custom range.")
    try:
        first = date.fromisoformat(start_text)
        last = date.fromisoformat(end_text) if end_text else today
    except ValueError:
        raise PeriodInvalid("Dates must look like 2026-11-01 (year-month-day).") from None
    if last < first:
        raise PeriodInvalid("The period's end date is before its start date.")
    if first > today:
        raise PeriodInvalid("The period starts in the future; there is nothing to show yet.")
    if (last - first).days + 1 > MAX_CUSTOM_DAYS:
        raise PeriodInvalid(f"Choose at most {MAX_CUSTOM_DAYS} days.")
    return Period(_midnight(first), _midnight(last + timedelta(days=1)), "custom", first, last)


def parse_campaign(value):
    """``all`` / empty → None; a campaign id → int. Raises PeriodInvalid for anything else."""
    value = (value or "").strip()
    if value in ("", "all"):
        return None
    try:
        campaign_id = database_id(value)  # "²".isdigit() is true, and ids stop at 2**63 - 1
    except ValueError:
        raise PeriodInvalid("Unknown campaign.") from None
    if db.session.get(Campaign, campaign_id) is None:
        raise PeriodInvalid(f"There is no campaign {value}.")
    return campaign_id


# -- the period's figures ---------------------------------------------------------------


@dataclass
class DayRow:
    day: date
    scheduled: int = 0  # requests created (scheduled) that day
    sent: int = 0  # messages accepted by a provider, initial + reminders
    reminders: int = 0  # of which reminders
    failed: int = 0  # messages a provider refused


@dataclass
class ChannelRow:
    provider: str
    channel: str
    sent: int = 0
    failed: int = 0

    @property
    def total(self):
        return self.sent + self.failed

    @property
    def failure_rate(self):
        return slo.rate(self.failed, self.total)


@dataclass
class PeriodMetrics:
    period: Period
    campaign_id: int | None
    days: list = field(default_factory=list)
    by_status: dict = field(default_factory=dict)  # requests created in the period, by status
    channels: list = field(default_factory=list)
    requests_sent: int = 0  # requests whose first message went out in the period
    clicked: int = 0  # … of which the customer opened the link
    submitted: int = 0  # … of which the customer submitted

    @property
    def scheduled(self):
        return sum(d.scheduled for d in self.days)

    @property
    def sent(self):
        return sum(c.sent for c in self.channels)

    @property
    def failed(self):
        return sum(c.failed for c in self.channels)

    @property
    def reminders(self):
        return sum(d.reminders for d in self.days)

    @property
    def success_rate(self):
        return slo.rate(self.sent, self.sent + self.failed)

    @property
    def click_rate(self):
        return slo.rate(self.clicked, self.requests_sent)

    @property
    def submission_rate(self):
        return slo.rate(self.submitted, self.requests_sent)


def period_metrics(period, campaign_id=None):
    """The period's figures, summed from daily_stats (a few rows per day and campaign)."""
    by_day = {d: DayRow(d) for d in period.days}
    metrics = PeriodMetrics(period, campaign_id, days=list(by_day.values()))
    stat = DailyStat
    query = (
        select(stat.day, stat.measure, stat.status, stat.provider, stat.channel, func.sum(stat.n))
        .where(stat.day >= period.first_day, stat.day <= period.last_day)
        .group_by(stat.day, stat.measure, stat.status, stat.provider, stat.channel)
    )
    if campaign_id is not None:
        query = query.where(stat.campaign_id == campaign_id)
    channels = {}
    for day, measure, status, provider, channel, count in db.session.execute(query):
        if not count:
            continue
        day_row = by_day.get(as_date(day)) or DayRow(as_date(day))
        if measure == "created":
            day_row.scheduled += count
            metrics.by_status[status] = metrics.by_status.get(status, 0) + count
        elif measure in ("send", "reminder"):
            # A slot retried until it went out counts once, as sent.
            key = (provider or "-", channel)
            row = channels.setdefault(key, ChannelRow(*key))
            if status == SlotSend.SENT:
                row.sent += count
                day_row.sent += count
                day_row.reminders += count if measure == "reminder" else 0
            else:
                row.failed += count
                day_row.failed += count
        elif measure == "first_sent":
            metrics.requests_sent += count
        elif measure == "first_sent_clicked":
            metrics.clicked += count
        elif measure == "first_sent_submitted":
            metrics.submitted += count
    metrics.channels = sorted(channels.values(), key=lambda c: (c.channel, c.provider))
    return metrics


# -- the SLO observations ---------------------------------------------------------------


def _seconds_between(later, earlier):
    if db.engine.dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _p95(value, *where):
    """Exact nearest-rank p95 in SQL: a count, then ORDER BY … DESC OFFSET over the window.

    Counting from the top keeps SQLite's sorter to the largest 5 % of the window instead
    of sorting all of it.
    """
    count = db.session.scalar(select(func.count()).where(*where))
    if not count:
        return None, 0
    from_top = count - 1 - slo.nearest_rank_index(count, 0.95)
    return float(db.session.scalar(select(value).where(*where).order_by(value.desc()).offset(from_top).limit(1))), count


def creation_p95_ms(since, until):
    return _p95(
        OrderEvent.processing_ms,
        OrderEvent.received_at > since,
        OrderEvent.received_at <= until,
        OrderEvent.processing_ms.is_not(None),
    )


def due_send_p95_seconds(since, until):
    """p95 of (provider accepted − slot due) for slots sent at their first attempt.

    Retried slots are left out on purpose: their wait is the retry back-off the policy
    chose, not the scheduler being late.
    """
    latency = _seconds_between(SlotSend.finished_at, SlotSend.due_at)
    return _p95(
        latency,
        SlotSend.finished_at > since,
        SlotSend.finished_at <= until,
        SlotSend.status == SlotSend.SENT,
        SlotSend.attempts == 1,
        SlotSend.due_at.is_not(None),
    )


def send_outcomes(since, until):
    """(sends, failures) finished in the window."""
    counts = dict(
        db.session.execute(
            select(SlotSend.status, func.count())
            .where(
                SlotSend.finished_at > since,
                SlotSend.finished_at <= until,
                SlotSend.status.in_((SlotSend.SENT, SlotSend.FAILED)),
            )
            .group_by(SlotSend.status)
        ).all()
    )
    return counts.get(SlotSend.SENT, 0) + counts.get(SlotSend.FAILED, 0), counts.get(SlotSend.FAILED, 0)


def last_tick_at():
    return db.session.scalar(select(DispatchTick.started_at).order_by(DispatchTick.started_at.desc()).limit(1))


def watching_since(now):
    """When this process first looked at the heartbeat (the reference before any tick)."""
    state = current_app.extensions.setdefault("monitoring", {})
    return state.setdefault("watching_since", now)


def observe(now, window=ALERT_WINDOW):
    since = now - window
    sends, failures = send_outcomes(since, now)
    tick = last_tick_at()
    return slo.Observations(
        creation_p95_ms=creation_p95_ms(since, now)[0],
        due_send_p95_seconds=due_send_p95_seconds(since, now)[0],
        sends=sends,
        failures=failures,
        last_tick_at=tick,
        watching_since=watching_since(now),
        scheduler_started_at=current_app.extensions.get("monitoring", {}).get("scheduler_started_at"),
    )


@dataclass(frozen=True)
class SloRow:
    name: str
    target: str
    last_hour: str
    last_day: str
    state: str  # ok | breached | no data | disabled
    detail: str = ""


def slo_panel(now, limits, breached_kinds):
    """The SLO panel's rows: the alerting window (last hour) and the last 24 hours."""
    hour, day = now - ALERT_WINDOW, now - timedelta(days=1)
    fmt = slo.format_seconds

    def state(kind, measured):
        if kind in breached_kinds:
            return "breached"
        return "ok" if measured else "no data"

    c_hour, c_hour_n = creation_p95_ms(hour, now)
    c_day, c_day_n = creation_p95_ms(day, now)
    d_hour, d_hour_n = due_send_p95_seconds(hour, now)
    d_day, d_day_n = due_send_p95_seconds(day, now)
    s_hour, f_hour = send_outcomes(hour, now)
    s_day, f_day = send_outcomes(day, now)

    def p95_text(value, n, to_seconds=1.0):
        return f"{fmt(value * to_seconds)} (n={n})" if n else "no data"

    def rate_text(sends, failures):
        return f"{failures / sends:.0%} ({failures} of {sends})" if sends else "no sends"

    rows = [
        SloRow(
            "Order webhook → request created (p95)",
            f"≤ {fmt(limits.creation_p95_seconds)}",
            p95_text(c_hour, c_hour_n, 0.001),
            p95_text(c_day, c_day_n, 0.001),
            state(slo.CREATION, c_hour_n),
        ),
        SloRow(
            "Message sent after its due time (p95)",
            f"≤ {fmt(limits.due_send_p95_seconds)}",
            p95_text(d_hour, d_hour_n),
            p95_text(d_day, d_day_n),
            state(slo.DUE_SEND, d_hour_n),
            "first attempts only; a retry waits its back-off on purpose",
        ),
        SloRow(
            "Messages failing",
            f"≤ {limits.failure_rate:.0%} (at least {limits.min_sends} sends)",
            rate_text(s_hour, f_hour),
            rate_text(s_day, f_day),
            "breached" if slo.FAILURE_RATE in breached_kinds else ("ok" if s_hour else "no data"),
        ),
    ]
    tick = last_tick_at()
    if not limits.scheduler_enabled:
        rows.append(
            SloRow(
                "Scheduler running (heartbeat)",
                "",
                "—",
                "—",
                "disabled",
                "the in-app scheduler is disabled (SCHEDULER_ENABLED=false): run 'flask dispatch' from cron "
                "every minute, or turn it on" + (f"; last run {fmt((now - tick).total_seconds())} ago" if tick else ""),
            )
        )
    else:
        last = f"last ran {fmt(max(0.0, (now - tick).total_seconds()))} ago" if tick else "has not run yet"
        rows.append(
            SloRow(
                "Scheduler running (heartbeat)",
                f"runs every {fmt(limits.scheduler_interval_seconds)} (alert after {slo.MISSED_INTERVALS} missed runs)",
                last,
                "",
                "breached" if slo.HEARTBEAT in breached_kinds else ("ok" if tick else "no data"),
                f"at {tick:%Y-%m-%d %H:%M:%S} UTC" if tick else "",
            )
        )
    return rows


def campaign_choices():
    """The campaigns for the overview's filter (whole rows: the page asks each one's status)."""
    return db.session.scalars(select(Campaign).order_by(Campaign.name)).all()
