"""The intake log in the dashboard: recent order webhooks and what became of each item.

A separate blueprint from ``app.intake.views`` (the webhook itself needs no login)."""

from flask import render_template, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.input_guard import page_number
from app.intake.models import OrderEvent
from app.web import dashboard_blueprint

bp = dashboard_blueprint("intake_log", __name__, url_prefix="/intake")

PER_PAGE = 50


def order_events_query(order_id=None):
    query = (
        select(OrderEvent)
        .options(selectinload(OrderEvent.items))
        .order_by(OrderEvent.received_at.desc(), OrderEvent.id.desc())
    )
    if order_id:
        # Order ids arrive as "1001", "#1001" or Shopify's numeric ids: match either form.
        query = query.where(OrderEvent.order_id.in_({order_id, order_id.lstrip("#")}))
    return query


@bp.get("/")
def index():
    order_id = (request.args.get("order_id") or "").strip()[:64]
    page = db.paginate(
        order_events_query(order_id),
        page=page_number(request.args),
        per_page=PER_PAGE,
        error_out=False,
        count=True,
    )
    return render_template("intake_log/index.html", page=page, order_id=order_id)
