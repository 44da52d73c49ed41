"""SLO breach decisions (spec §10): pure functions of what was observed, the limits and now.

Nothing here reads the database or the clock; ``metrics.observe`` gathers the figures and
``alerts.evaluate_alerts`` acts on the decisions.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

CREATION = "creation_latency"
DUE_SEND = "due_send_latency"
HEARTBEAT = "scheduler_heartbeat"
FAILURE_RATE = "failure_rate"
KINDS = (CREATION, DUE_SEND, HEARTBEAT, FAILURE_RATE)

# How many missed scheduler intervals make the heartbeat a breach.
MISSED_INTERVALS = 3
# Fewer sends than this in the window say nothing about the provider: no failure-rate alert.
MIN_SENDS_FOR_RATE = 10


@dataclass(frozen=True)
class Limits:
    creation_p95_seconds: float = 10.0
    due_send_p95_seconds: float = 300.0
    failure_rate: float = 0.20
    min_sends: int = MIN_SENDS_FOR_RATE
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 60.0

    @classmethod
    def from_config(cls, config):
        rate = float(config.get("ALERT_FAILURE_RATE", 0.20))
        return cls(
            creation_p95_seconds=float(config.get("SLO_CREATION_SECONDS", 10.0)),
            due_send_p95_seconds=float(config.get("SLO_DUE_SEND_SECONDS", 300)),
            failure_rate=rate / 100 if rate > 1 else rate,  # "20" means 20 %
            scheduler_enabled=bool(config.get("SCHEDULER_ENABLED", True)),
            scheduler_interval_seconds=float(config.get("SCHEDULER_INTERVAL_SECONDS", 60)),
        )

    @property
    def heartbeat_max_age(self):
        return timedelta(seconds=MISSED_INTERVALS * self.scheduler_interval_seconds)


@dataclass(frozen=True)
class Observations:
    """The alerting window's figures (the last hour), as ``metrics.observe`` measured them."""

    creation_p95_ms: float | None = None  # None: no webhook in the window
    due_send_p95_seconds: float | None = None  # None: nothing sent in the window
    sends: int = 0  # sent + failed in the window
    failures: int = 0
    last_tick_at: datetime | None = None
    # When this process started watching: the reference while no tick was ever recorded.
    watching_since: datetime | None = None
    # When this process's scheduler started (None: not here): a gap before it is no breach.
    scheduler_started_at: datetime | None = None


@dataclass(frozen=True)
class Breach:
    kind: str
    message: str


def nearest_rank_index(count, q):
    """0-based index of the q-quantile in a sorted list of ``count`` values (nearest rank)."""
    if count <= 0:
        raise ValueError("no values")
    return max(0, math.ceil(q * count) - 1)


def percentile(values, q=0.95):
    """Nearest-rank percentile (the value at least q of the samples are ≤ to); None if empty."""
    ordered = sorted(values)
    return ordered[nearest_rank_index(len(ordered), q)] if ordered else None


def rate(part, whole):
    return part / whole if whole else None


# What each breach means to a merchant: the banner's and the alert email's first words.
# The technical figures (p95, windows, counts) stay on the home page's "Service levels" panel.
TITLES = {
    CREATION: "New orders are slow to become requests",
    DUE_SEND: "Messages are going out late",
    HEARTBEAT: "No messages are being sent",
    FAILURE_RATE: "Many messages are failing",
}
CHECK_SCHEDULER = "Check that the app is running and the scheduler is on."


def creation_breach(p95_ms, limits):
    if p95_ms is None or p95_ms <= limits.creation_p95_seconds * 1000:
        return None
    return Breach(
        CREATION,
        f"{TITLES[CREATION]}: 1 in 20 order webhooks took {format_seconds(p95_ms / 1000)} or "
        f"more to process in the last hour (target: {format_seconds(limits.creation_p95_seconds)})."
        " Check the server's load and its database.",
    )


def due_send_breach(p95_seconds, limits):
    if p95_seconds is None or p95_seconds <= limits.due_send_p95_seconds:
        return None
    return Breach(
        DUE_SEND,
        f"{TITLES[DUE_SEND]}: 1 in 20 messages waited {format_seconds(p95_seconds)} or more "
        f"after its due time in the last hour (target: {format_seconds(limits.due_send_p95_seconds)})."
        f" {CHECK_SCHEDULER}",
    )


def heartbeat_breach(last_tick_at, watching_since, now, limits, scheduler_started_at=None):
    """No dispatch tick for MISSED_INTERVALS intervals (only when the scheduler is enabled).

    Time before the scheduler's start in this process is not a gap (the app was not running,
    or `make run` was still seeding): the clock starts at the later of the last tick and the
    start, so a restart after a quiet weekend or a slow seed shows no alert."""
    if not limits.scheduler_enabled:
        return None
    if scheduler_started_at is not None and (last_tick_at is None or last_tick_at < scheduler_started_at):
        if now - scheduler_started_at <= limits.heartbeat_max_age:
            return None
        return Breach(
            HEARTBEAT,
            f"{TITLES[HEARTBEAT]}: the scheduler has not run once in the "
            f"{format_seconds((now - scheduler_started_at).total_seconds())} since it started "
            f"(it should run every {format_seconds(limits.scheduler_interval_seconds)}). "
            f"{CHECK_SCHEDULER}",
        )
    reference = last_tick_at or watching_since
    if reference is None or now - reference <= limits.heartbeat_max_age:
        return None
    every = format_seconds(limits.scheduler_interval_seconds)
    if last_tick_at is None:
        return Breach(
            HEARTBEAT,
            f"{TITLES[HEARTBEAT]}: the scheduler has not run once in the "
            f"{format_seconds((now - reference).total_seconds())} since the app started "
            f"(it should run every {every}). {CHECK_SCHEDULER}",
        )
    return Breach(
        HEARTBEAT,
        f"{TITLES[HEARTBEAT]}: the scheduler last ran "
        f"{format_seconds((now - last_tick_at).total_seconds())} ago (it should run every {every})."
        f" {CHECK_SCHEDULER}",
    )


def failure_rate_breach(sends, failures, limits):
    if sends < limits.min_sends:
        return None
    observed = failures / sends
    if observed <= limits.failure_rate:
        return None
    return Breach(
        FAILURE_RATE,
        f"{TITLES[FAILURE_RATE]}: {failures} of the {sends} messages sent in the last hour "
        f"failed ({observed:.0%}; target: at most {limits.failure_rate:.0%}). Check the email "
        "and SMS provider's settings (credentials, quota); the Requests Log shows each "
        "failure's reason.",
    )


def breaches(obs, limits, now):
    """Every SLO breached by these observations, in a fixed order."""
    found = (
        creation_breach(obs.creation_p95_ms, limits),
        due_send_breach(obs.due_send_p95_seconds, limits),
        heartbeat_breach(obs.last_tick_at, obs.watching_since, now, limits, obs.scheduler_started_at),
        failure_rate_breach(obs.sends, obs.failures, limits),
    )
    return [b for b in found if b is not None]


def alert_changes(open_kinds, breached_kinds):
    """(kinds to open, kinds to resolve): an alert opens once per breach and stays open while
    the breach lasts, so repeated evaluations of one breach never notify twice."""
    open_kinds, breached_kinds = set(open_kinds), set(breached_kinds)
    return (
        [k for k in KINDS if k in breached_kinds - open_kinds],
        [k for k in KINDS if k in open_kinds - breached_kinds],
    )


def format_seconds(seconds):
    seconds = float(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
