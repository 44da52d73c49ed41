"""``flask optouts list|add|remove|history``: the suppression list from the command line."""

import click
from flask.cli import AppGroup

from app.cli_utils import emit, fail
from app.clock import now as clock_now
from app.extensions import db
from app.optouts.services import (
    CHANNELS,
    OptOutInvalid,
    OptOutNotFound,
    add_optout,
    clean_contact,
    contact_history,
    find_optout,
    list_optouts,
    optout_dict,
    remove_optout,
)

optouts_cli = AppGroup("optouts", help="The opt-out (suppression) list shared by every campaign.")


def human_row(d):
    return f"#{d['id']} {d['channel']:<5} {d['contact']}  {d['source_label']}  {d['created_at']}" + (
        f"  ({d['detail']})" if d["detail"] else ""
    )


@optouts_cli.command("list")
@click.option("--channel", type=click.Choice(CHANNELS))
@click.option("--search", help="Part of an email address, phone number or source.")
@click.option("--limit", type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True)
def list_command(channel, search, limit, as_json):
    """Opted-out contacts, newest first."""
    rows = [optout_dict(r) for r in list_optouts(channel=channel, search=search, limit=limit)]
    emit(rows, as_json, lambda rows: "\n".join(human_row(r) for r in rows) or "no opt-outs")


@optouts_cli.command("add")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("contact")
@click.option("--note", help="Why (kept with the opt-out).")
@click.option("--json", "as_json", is_flag=True)
def add_command(channel, contact, note, as_json):
    """Stop all messages to CONTACT on CHANNEL; pending requests are cancelled."""
    try:
        row, created = add_optout(channel, contact, clock_now(), by="cli", detail=note)
    except OptOutInvalid as exc:
        fail(str(exc))
    data = {**optout_dict(row), "created": created}
    db.session.commit()
    emit(data, as_json, lambda d: ("added " if created else "already opted out: ") + human_row(d))


@optouts_cli.command("remove")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("contact")
@click.option("--json", "as_json", is_flag=True)
def remove_command(channel, contact, as_json):
    """Let CONTACT receive messages again (for new orders; cancelled requests stay cancelled)."""
    try:
        row = find_optout(channel, clean_contact(channel, contact))
        if row is None:
            raise OptOutNotFound(f"{contact} is not on the {channel} opt-out list")
        removed = remove_optout(row.id, clock_now(), by="cli")
    except (OptOutInvalid, OptOutNotFound) as exc:
        fail(str(exc))
    db.session.commit()
    emit({**removed, "removed": True}, as_json, lambda d: "removed " + human_row(d))


@optouts_cli.command("history")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("contact")
@click.option("--json", "as_json", is_flag=True)
def history_command(channel, contact, as_json):
    """Opt-out and opt-in events of one contact, newest first."""
    try:
        contact = clean_contact(channel, contact)
    except OptOutInvalid as exc:
        fail(str(exc))
    rows = [e.to_dict() for e in contact_history(channel, contact)]
    emit(
        rows,
        as_json,
        lambda rows: (
            "\n".join(
                f"{e['occurred_at']} {e['type']:<9} {e['source']}{'' if e['applied'] else ' (not applied: older than a later change)'}"
                + (f"  {e['detail']}" if e["detail"] else "")
                for e in rows
            )
            or "no events"
        ),
    )
