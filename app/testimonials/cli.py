"""``flask testimonials approve|reject|feature|unfeature ID…`` and ``export``."""

import os

import click
from flask.cli import AppGroup

from app.cli_utils import ID, emit
from app.clock import now as clock_now
from app.extensions import db
from app.testimonials.export import export_chunks
from app.testimonials.moderation import ACTION_WORDS, TABS, apply_action
from app.testimonials.services import TestimonialFilter

testimonials_cli = AppGroup("testimonials", help="Moderate and export testimonials.")


def moderation_command(action):
    @click.argument("ids", nargs=-1, required=True, type=ID)
    @click.option("--json", "as_json", is_flag=True)
    def command(ids, as_json):
        done, skipped = apply_action(action, list(ids), clock_now())
        db.session.commit()
        result = {"action": action, "done": done, "not_done": skipped}
        emit(result, as_json, lambda r: (f"{ACTION_WORDS[action]}: {', '.join(map(str, done)) or 'none'}"
                                         + (f"\nnot {ACTION_WORDS[action]} (no such testimonial, withdrawn or "
                                            f"erased): {', '.join(map(str, skipped))}" if skipped else "")))
        if skipped and not done:
            raise SystemExit(1)

    command.__doc__ = {
        "approve": "Approve testimonials: they become public (when the customer consented).",
        "reject": "Reject testimonials: they are never shown.",
        "feature": "Feature testimonials (approves them too): shown first on the wall and in the feed.",
        "unfeature": "Stop featuring testimonials.",
    }[action]
    return command


for _action in ("approve", "reject", "feature", "unfeature"):
    testimonials_cli.command(_action)(moderation_command(_action))


@testimonials_cli.command("export")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The ZIP file to write (replaced if it exists).")
@click.option("--status", type=click.Choice(TABS), help="Only testimonials in this status (default: all).")
@click.option("--product", help="Only this product id.")
@click.option("--json", "as_json", is_flag=True)
def export_command(out, status, product, as_json):
    """Write a ZIP: every video (original and playable), poster, testimonials.json and .csv."""
    count, chunks = export_chunks(TestimonialFilter(status=status, product=product))
    written = 0
    partial = out + ".partial"
    with open(partial, "wb") as target:
        for chunk in chunks:
            target.write(chunk)
            written += len(chunk)
    os.replace(partial, out)
    emit({"out": out, "testimonials": count, "bytes": written}, as_json,
         lambda r: f"{r['testimonials']} testimonials, {r['bytes']} bytes → {r['out']}")
