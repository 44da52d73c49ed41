"""``flask testimonials approve|reject|feature|unfeature ID…`` and ``export``."""

import click
from flask.cli import AppGroup

from app.cli_utils import ID, emit
from app.clock import now as clock_now
from app.extensions import db
from app.testimonials.moderation import ACTION_WORDS, apply_action

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
