"""Acting on SLO breaches: alert rows, the ERROR log line, one email per breach, the banner.

``evaluate_alerts(now)`` is the one entry point (the scheduler's ``alerts`` job calls it
every interval). A breach opens an alert row once; while it lasts, later evaluations find
the row open and do nothing; when it ends the row is resolved, and the next breach of the
same kind is a new row and a new email.
"""

import html
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.clock import now as clock_now
from app.extensions import db
from app.monitoring import metrics, slo
from app.monitoring.models import Alert
from app.providers import OutgoingMessage, ProviderError, get_provider
from app.settings import current_settings

log = logging.getLogger("app.monitoring")

BANNER_TTL = timedelta(seconds=30)
TITLES = slo.TITLES


def current_breaches(now):
    """The breaches right now, evaluated at most every BANNER_TTL per process."""
    state = current_app.extensions.setdefault("monitoring", {})
    cached = state.get("breaches")
    if cached is not None and timedelta(0) <= now - cached[0] < BANNER_TTL:
        return cached[1]
    found = slo.breaches(metrics.observe(now), slo.Limits.from_config(current_app.config), now)
    state["breaches"] = (now, found)
    return found


def slo_banners():
    """A dashboard banner source (app.dashboard.nav): one red banner per SLO breached now,
    on every dashboard page, in the merchant's words (the figures are on the home page's
    "Service levels" panel)."""
    return [("danger", b.message) for b in current_breaches(clock_now())]


def open_alerts():
    return db.session.scalars(select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.opened_at)).all()


def recent_alerts(limit=10):
    return db.session.scalars(select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit)).all()


def evaluate_alerts(now):
    """Open, resolve and notify alerts for the SLOs at ``now``; returns what changed."""
    state = current_app.extensions.setdefault("monitoring", {})
    state.pop("breaches", None)
    found = current_breaches(now)
    messages = {b.kind: b.message for b in found}
    open_kinds = {a.kind for a in open_alerts()}
    to_open, to_resolve = slo.alert_changes(open_kinds, messages)
    opened = []
    for kind in to_open:
        try:
            with db.session.begin_nested():
                db.session.add(Alert(kind=kind, message=messages[kind], opened_at=now))
        except IntegrityError:  # another process opened it a moment ago: one alert, not two
            continue
        opened.append(kind)
    if to_resolve:
        db.session.execute(
            update(Alert).where(Alert.kind.in_(to_resolve), Alert.resolved_at.is_(None)).values(resolved_at=now)
        )
    db.session.commit()
    for kind in opened:
        log.error("SLO breach: %s — %s", kind, messages[kind])
    for kind in to_resolve:
        log.info("SLO breach resolved: %s", kind)
    notified = notify_open_alerts(now)
    return {"breaches": [b.kind for b in found], "opened": opened, "resolved": to_resolve, "notified": notified}


def notify_open_alerts(now):
    """Email ALERT_EMAIL once per open alert: the row is claimed (notified_at set and
    committed) before the provider is called, outside any transaction, so two processes
    never both send it; a failed send releases the claim and the next evaluation retries."""
    to = current_app.config.get("ALERT_EMAIL")
    if not to:
        return []
    pending = db.session.scalars(
        select(Alert).where(Alert.resolved_at.is_(None), Alert.notified_at.is_(None)).order_by(Alert.id)
    ).all()
    claimed = []
    for alert in pending:
        won = db.session.execute(
            update(Alert).where(Alert.id == alert.id, Alert.notified_at.is_(None)).values(notified_at=now)
        ).rowcount
        if won:
            claimed.append((alert.id, alert.kind, alert.message, alert.opened_at))
    db.session.commit()
    notified = []
    for alert_id, kind, message, opened_at in claimed:
        try:
            get_provider("email").send(alert_message(to, kind, message, opened_at))
        except (ProviderError, Exception) as exc:  # noqa: BLE001 - an alert must never break the job
            log.error("SLO alert email to %s failed (%s): %s; will retry", to, kind, exc)
            db.session.execute(
                update(Alert).where(Alert.id == alert_id).values(notified_at=None, notify_error=str(exc)[:1000])
            )
        else:
            notified.append(kind)
            db.session.execute(update(Alert).where(Alert.id == alert_id).values(notify_error=None))
            log.info("SLO alert email sent to %s: %s", to, kind)
        db.session.commit()
    return notified


def alert_message(to, kind, message, opened_at):
    shop = current_settings()
    subject = f"[{shop.name} testimonials] {TITLES[kind]}"
    dashboard = f"{shop.public_base_url}/"
    text = (
        f"{message}\n\nSince {opened_at:%Y-%m-%d %H:%M} UTC.\n"
        f'The dashboard\'s home page has the figures ("Service levels") and the Requests Log each '
        f"message's story: {dashboard}\n\n"
        "You get one email each time this starts; the dashboard's red banner goes away once things "
        "are back to normal.\n"
    )
    body = (
        f"<p><strong>{html.escape(message)}</strong></p><p>Since {opened_at:%Y-%m-%d %H:%M} UTC.</p>"
        f'<p><a href="{html.escape(dashboard)}">Open the dashboard</a>: its home page has the figures '
        "(&ldquo;Service levels&rdquo;) and the Requests Log each message's story.</p>"
        "<p>You get one email each time this starts; the dashboard's red banner goes away once things "
        "are back to normal.</p>"
    )
    return OutgoingMessage(
        channel="email", to=to, subject=subject, html=body, text=text, request_id=None, campaign_id=None, slot=None
    )
