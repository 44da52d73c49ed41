"""``flask campaigns …``"""

import functools

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.campaign_admin.services import CampaignInvalid, create_campaign, set_status, update_campaign
from app.campaigns.models import STARTING, Campaign
from app.cli_utils import ID, emit, fail
from app.clock import now
from app.extensions import db

campaigns_cli = AppGroup("campaigns", help="Create, change, pause, resume and archive campaigns.")


def campaign_options(for_update):
    def wrap(f):
        opts = [
            click.option("--name", required=not for_update),
            click.option("--trigger", type=click.Choice(["delivered", "fulfilled"])),
            click.option("--delay-days", type=int),
            click.option("--channel", type=click.Choice(["email", "sms", "both"])),
            click.option("--reminders/--no-reminders", "reminder_enabled", default=None),
            click.option("--reminder-delay-days", type=int),
            click.option("--max-reminders", type=int),
            click.option("--expire-after-days", type=int),
            click.option("--include-product", "include_products", multiple=True),
            click.option("--exclude-product", "exclude_products", multiple=True),
            click.option("--min-order-total"),
            click.option("--exclude-tag", "exclude_tags", multiple=True),
            click.option("--status", type=click.Choice(STARTING)),
            click.option(
                "--email-window",
                "email_send_window",
                metavar="HH:MM-HH:MM|any",
                help="When email may go out, shop time (SHOP_TIMEZONE). Default: any.",
            ),
            click.option(
                "--sms-window",
                "sms_send_window",
                metavar="HH:MM-HH:MM|any",
                help="When SMS may go out, shop time. Default: 09:00-20:00.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print only JSON."),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return wrap


def _settings(kwargs):
    values = {k: v for k, v in kwargs.items() if v is not None and v != ()}
    for key in ("include_products", "exclude_products", "exclude_tags"):
        if key in values:
            values[key] = list(values[key])
    return values


def human(c):
    reminders = (
        f"reminders every {c['reminder_delay_days']}d ×{c['max_reminders']}"
        if c["reminder_enabled"]
        else "no reminders"
    )
    windows = " ".join(f"{ch}-window={c.get(f'{ch}_send_window') or 'any'}" for ch in ("email", "sms"))
    return (
        f"#{c['id']} {c['name']} [{c['status']}] trigger={c['trigger']} delay={c['delay_days']}d "
        f"channel={c['channel']} {reminders} expires after {c['expire_after_days']}d {windows}"
    )


def load(campaign_id):
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        fail(f"no campaign with id {campaign_id}")
    return campaign


def handle_invalid(f):
    @functools.wraps(f)
    def run(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except CampaignInvalid as exc:
            db.session.rollback()
            fail(f"{exc.field}: {exc}")

    return run


@campaigns_cli.command("create")
@campaign_options(for_update=False)
@handle_invalid
def create(as_json, **kwargs):
    """Create a campaign (defaults: delivered, 3 days, email, 2 reminders every 4 days)."""
    campaign = create_campaign(now(), **_settings(kwargs))
    db.session.commit()
    emit(campaign.to_dict(), as_json, human)


@campaigns_cli.command("update")
@click.argument("campaign_id", type=ID)
@campaign_options(for_update=True)
@handle_invalid
def update(campaign_id, as_json, **kwargs):
    """Change a campaign's settings; slots not yet sent follow the new settings."""
    campaign = load(campaign_id)
    update_campaign(campaign, now(), **_settings(kwargs))
    db.session.commit()
    emit(campaign.to_dict(), as_json, human)


@campaigns_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json):
    """List campaigns."""
    rows = [c.to_dict() for c in db.session.scalars(select(Campaign).order_by(Campaign.id))]
    emit(rows, as_json, lambda rows: "\n".join(human(c) for c in rows) or "no campaigns")


def _status_command(action, help_text):
    @campaigns_cli.command(action, help=help_text)
    @click.argument("campaign_id", type=ID)
    @click.option("--json", "as_json", is_flag=True)
    @handle_invalid
    def command(campaign_id, as_json):
        campaign = load(campaign_id)
        cancelled = set_status(campaign, action, now())
        db.session.commit()
        data = {**campaign.to_dict(), "cancelled_requests": cancelled}
        emit(data, as_json, lambda c: human(c) + (f" ({cancelled} pending requests cancelled)" if cancelled else ""))

    return command


_status_command("pause", "Hold every pending send until the campaign is resumed.")
_status_command("resume", "Release held sends; overdue ones go out at the next tick.")
_status_command("archive", "Stop the campaign for good; its pending requests are cancelled.")
