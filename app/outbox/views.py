"""The outbox in the dashboard: stored messages rendered as the customer would see them.

Only while the ``outbox`` provider is configured for a channel: with real providers the
messages live at SendGrid or Twilio, and an old outbox would mislead.
"""

from flask import abort, current_app, render_template, request
from sqlalchemy import func, select

from app.extensions import db
from app.input_guard import database_id, page_number
from app.outbox.models import OutboxMessage
from app.web import dashboard_blueprint

bp = dashboard_blueprint("outbox", __name__, url_prefix="/outbox")

PER_PAGE = 25


def outbox_channels():
    config = current_app.config
    return [
        channel for channel, key in (("email", "EMAIL_PROVIDER"), ("sms", "SMS_PROVIDER")) if config[key] == "outbox"
    ]


def messages_query(request_id=None, recipient=None, channels=()):
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if request_id is not None:
        query = query.where(OutboxMessage.request_id == request_id)
    if recipient:
        query = query.where(func.lower(OutboxMessage.to).contains(recipient.strip().lower(), autoescape=True))
    if channels:
        query = query.where(OutboxMessage.channel.in_(channels))
    return query


@bp.get("/")
def index():
    channels = outbox_channels()
    if not channels:
        abort(404, description="The outbox is only used when EMAIL_PROVIDER or SMS_PROVIDER is 'outbox'.")
    request_id = request.args.get("request_id", type=database_id)
    recipient = (request.args.get("to") or "").strip()[:254]
    page = db.paginate(
        messages_query(request_id, recipient, channels),
        page=page_number(request.args),
        per_page=PER_PAGE,
        error_out=False,
        count=True,
    )
    args = {k: v for k, v in (("request_id", request_id), ("to", recipient)) if v}
    return render_template(
        "outbox/index.html", page=page, request_id=request_id, recipient=recipient, args=args, channels=channels
    )
