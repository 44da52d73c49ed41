"""``flask stats check|rebuild``: the home page's daily counts against the rows they count."""

import click
from flask.cli import AppGroup

from app.cli_utils import emit
from app.extensions import db
from app.monitoring import rollup

stats_cli = AppGroup("stats", help="The home page's per-day counts (daily_stats, kept by triggers).")


def drift_dict(key, stored, computed):
    return {**dict(zip(rollup.KEY_COLUMNS, key, strict=True)), "stored": stored, "computed": computed}


@stats_cli.command("check")
@click.option("--json", "as_json", is_flag=True)
def check_command(as_json):
    """Compare daily_stats with a recount of the requests and sends; exit 1 on a difference."""
    data = {"missing_triggers": rollup.missing_triggers(), "differences": [drift_dict(*d) for d in rollup.drift()]}
    data["ok"] = not data["missing_triggers"] and not data["differences"]

    def human(d):
        if d["ok"]:
            return "daily_stats matches the requests and sends; triggers in place"
        lines = [
            f"missing trigger: {name} (run `flask stats rebuild` after recreating it)" for name in d["missing_triggers"]
        ]
        lines += [
            f"{x['day']} campaign {x['campaign_id']} {x['measure']} {x['status']} {x['provider']} "
            f"{x['channel']}: stored {x['stored']}, counted {x['computed']}"
            for x in d["differences"]
        ]
        return "\n".join(lines + ["run `flask stats rebuild` to recount"] * bool(d["differences"]))

    emit(data, as_json, human)
    if not data["ok"]:
        raise SystemExit(1)


@stats_cli.command("rebuild")
@click.option("--json", "as_json", is_flag=True)
def rebuild_command(as_json):
    """Recount daily_stats from the requests and sends (safe at any time)."""
    rollup.rebuild()
    db.session.commit()
    data = {"rows": len(rollup.stored_counts())}
    emit(data, as_json, lambda d: f"daily_stats rebuilt: {d['rows']} rows")
