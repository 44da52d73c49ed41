"""``flask outbox list``."""

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.cli_utils import ID, emit
from app.extensions import db
from app.outbox.models import OutboxMessage

outbox_cli = AppGroup("outbox", help="Messages stored by the outbox provider.")


@outbox_cli.command("list")
@click.option("--request", "request_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
def outbox_list(request_id, as_json):
    """Messages the outbox provider stored (newest last)."""
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if request_id:
        query = query.where(OutboxMessage.request_id == request_id)
    rows = [m.to_dict() for m in db.session.scalars(query)]

    def human(rows):
        return (
            "\n".join(
                f"#{m['id']} {m['created_at']} {m['channel']} to {m['to']} request {m['request_id']} slot {m['slot']} "
                f"[{m['outcome']}] {m['subject'] or m['text'][:60]}"
                for m in rows
            )
            or "outbox is empty"
        )

    emit(rows, as_json, human)
