"""``flask customers erase|lift EMAIL_OR_PHONE`` and ``flask customers erasures``."""

import click
from flask.cli import AppGroup

from app.cli_utils import emit, fail
from app.clock import now as clock_now
from app.erasure.services import ErasureInvalid, erase, erasure_dicts, lift, plan_erasure
from app.extensions import db

customers_cli = AppGroup("customers", help="Erase a customer's data on request (GDPR art. 17).")


def plan_dict(plan):
    return {
        "contact": plan.contact,
        "emails": sorted(plan.emails),
        "phones": sorted(plan.phones),
        "requests": plan.request_ids,
        "testimonials": plan.testimonial_ids,
        "files": len(plan.files),
        "outbox_messages": plan.outbox,
        "order_webhooks": len(plan.order_event_ids),
        "opt_outs": plan.opt_outs,
        "summary": plan.summary(),
    }


@customers_cli.command("erase")
@click.argument("contact")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True)
def erase_command(contact, yes, as_json):
    """Erase every trace of CONTACT (an email address or a phone number in +E.164)."""
    try:
        plan = plan_erasure(contact)
    except ErasureInvalid as exc:
        fail(str(exc))
    db.session.rollback()
    if not yes and not as_json:
        click.echo(f"This erases {', '.join(sorted(plan.emails | plan.phones))}: {plan.summary()}.", err=True)
        click.confirm("Erase for good?", abort=True, err=True)
    plan = erase(contact, clock_now(), by="cli")
    db.session.commit()
    emit(plan_dict(plan), as_json, lambda d: f"erased {', '.join(d['emails'] + d['phones'])}: {d['summary']}")


@customers_cli.command("lift")
@click.argument("contact")
@click.option("--json", "as_json", is_flag=True)
def lift_command(contact, as_json):
    """Take orders from an erased CONTACT again (their old data stays erased)."""
    try:
        lifted = lift(contact, clock_now(), by="cli")
    except ErasureInvalid as exc:
        fail(str(exc))
    db.session.commit()
    if not lifted:
        fail(f"{contact} is not on the erasure list")
    emit({"lifted": lifted}, as_json, lambda d: f"lifted: orders from {contact} are taken again")


@customers_cli.command("erasures")
@click.option("--json", "as_json", is_flag=True)
def erasures_command(as_json):
    """Erasures done (a keyed hash of each contact, never the contact)."""
    emit(
        erasure_dicts(),
        as_json,
        lambda rows: (
            "\n".join(
                f"#{r['id']} {r['channel']:<5} {r['contact_hash'][:12]}…  {r['erased_at']} by {r['erased_by']}"
                + (f"  lifted {r['lifted_at']}" if r["lifted_at"] else "")
                for r in rows
            )
            or "no erasures"
        ),
    )
