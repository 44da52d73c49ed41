"""``flask providers check``: verify the configured providers' credentials."""

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli_utils import emit
from app.providers.checks import CHANNELS, check_providers

providers_cli = AppGroup("providers", help="Check the email and SMS providers.")


def human(results):
    lines = []
    for r in results:
        if r["ok"]:
            state = "OK"
        else:
            state = "RETRY LATER" if r["transient"] else "FAILED"
        code = f" [{r['code']}]" if r["code"] is not None else ""
        lines.append(f"{r['channel']:<5} {r['provider']:<8} {state}{code}: {r['detail']}")
    return "\n".join(lines)


@providers_cli.command("check")
@click.option("--channel", type=click.Choice(CHANNELS), help="Check one channel only.")
@click.option("--json", "as_json", is_flag=True)
def check_command(channel, as_json):
    """Verify each channel's credentials with a harmless API call (sends nothing).

    Exits 1 when any check fails.
    """
    results = check_providers(current_app._get_current_object(), (channel,) if channel else CHANNELS)
    emit(results, as_json, human)
    if not all(r["ok"] for r in results):
        click.get_current_context().exit(1)
