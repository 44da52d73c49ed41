"""``flask shopify log``: the Shopify webhooks received, newest first, with their outcome."""

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.cli_utils import emit
from app.extensions import db
from app.intake.models import OrderEvent
from app.shopify.services import SOURCE

shopify_cli = AppGroup("shopify", help="Shopify as the order source.")


@shopify_cli.command("log")
@click.option("--order", "order_id", help="Only this Shopify order id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON.")
def log_command(order_id, limit, as_json):
    """Every verified Shopify webhook: topic, order, and what it did (or why not)."""
    query = select(OrderEvent).where(OrderEvent.source == SOURCE).order_by(OrderEvent.id.desc()).limit(limit)
    if order_id:
        query = query.where(OrderEvent.order_id == order_id)
    rows = [e.to_dict() for e in db.session.scalars(query)]

    def human(rows):
        lines = []
        for e in rows:
            lines.append(f"{e['received_at']} {e['topic']:<27} order {e['order_id'] or '-':<15} {e['summary']}")
            lines.extend(f"    skipped item {s['item_id'] or '-'}: {s['reason']}" for s in e["skipped"])
        return "\n".join(lines) or "no Shopify webhooks received yet"

    emit(rows, as_json, human)
