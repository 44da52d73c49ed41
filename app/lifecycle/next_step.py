"""What happens next for a request, in one short line (the Requests Log's column; pure)."""

from app.campaigns.models import ACTIVE, PAUSED
from app.lifecycle.names import message_name, short_time
from app.lifecycle.states import CANCELLED, CLICKED, EXPIRED, FAILED, QUEUED, SCHEDULED, SENT, SUBMITTED


def next_step(req, *, campaign_status=ACTIVE, max_attempts=3):
    """One short line: what happens next for a request in its status.

    ``req`` is anything with the request's fields (status, next_send_at, next_slot,
    attempts, expires_at, submitted_at, cancelled_at)."""
    status = req.status
    at = req.next_send_at

    if status == FAILED:
        return "needs your action"
    if status == SUBMITTED:
        return f"done: testimonial received {short_time(req.submitted_at)}"
    if status == EXPIRED:
        return f"ended: no testimonial by {short_time(req.expires_at)}" if req.expires_at else "ended: expired"
    if status == CANCELLED:
        return f"stopped {short_time(req.cancelled_at)}" if req.cancelled_at else "stopped"
    if status == QUEUED:
        return "sending now"
    if at is None:
        if status in (SENT, CLICKED):
            return "no more reminders" + (f"; link open until {short_time(req.expires_at)}" if req.expires_at else "")
        return "nothing planned"
    if campaign_status == PAUSED:
        return f"on hold: campaign paused (was due {short_time(at)})"
    if campaign_status not in (ACTIVE, None):
        return f"not sent: campaign {campaign_status}"
    what = message_name(req.next_slot)
    if req.attempts:
        return f"{what}: new try {short_time(at)} (try {req.attempts + 1} of {max_attempts})"
    if status == SCHEDULED:
        return f"sends {short_time(at)}"
    if req.next_slot == 0:
        return f"first message again {short_time(at)}"
    return f"{what} on {short_time(at)}"
