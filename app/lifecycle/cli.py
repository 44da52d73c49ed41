"""``flask requests …``, ``flask dispatch``."""

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from app.cli_utils import ID, emit, fail, parse_time_option
from app.clock import now as clock_now
from app.extensions import db
from app.lifecycle.dispatch import dispatch_due
from app.lifecycle.heartbeat import record_tick
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import ActionRefused, cancel_request, link_for, retry_request
from app.lifecycle.states import STATUSES

requests_cli = AppGroup("requests", help="Inspect, retry and cancel testimonial requests.")


def request_dict(req, with_events=False):
    data = req.to_dict(link=link_for(req))
    if with_events:
        data["events"] = [e.to_dict() for e in req.events]
    return data


def human_row(r):
    return (
        f"#{r['id']} order {r['order_id']} product {r['product_id']} campaign {r['campaign_id']} "
        f"{r['channel']} [{r['status']}] reminders={r['reminder_count']} next={r['next_send_at'] or '-'}"
        + (f" error: {r['last_error']}" if r["last_error"] else "")
    )


def load(request_id):
    req = db.session.get(TestimonialRequest, request_id)
    if req is None:
        fail(f"no request with id {request_id}")
    return req


@requests_cli.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--campaign", "campaign_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
def list_requests(status, campaign_id, as_json):
    """List requests, newest first."""
    query = select(TestimonialRequest).order_by(TestimonialRequest.id.desc())
    if status:
        query = query.where(TestimonialRequest.status == status)
    if campaign_id:
        query = query.where(TestimonialRequest.campaign_id == campaign_id)
    rows = [request_dict(r) for r in db.session.scalars(query)]
    emit(rows, as_json, lambda rows: "\n".join(human_row(r) for r in rows) or "no requests")


@requests_cli.command("show")
@click.argument("request_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
def show(request_id, as_json):
    """One request with its event timeline."""
    data = request_dict(load(request_id), with_events=True)

    def human(d):
        lines = [human_row(d), f"link: {d['link']}"]
        for e in d["events"]:
            extra = " ".join(
                f"{k}={e[k]}" for k in ("channel", "slot", "provider", "provider_message_id") if e[k] is not None
            )
            lines.append(f"  {e['occurred_at']} {e['type']:<10} {extra} {e['detail'] or ''}".rstrip())
        return "\n".join(lines)

    emit(data, as_json, human)


@requests_cli.command("retry")
@click.argument("request_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
def retry(request_id, as_json):
    """Send a failed request's slot again at the next tick."""
    try:
        req = retry_request(load(request_id), clock_now(), by="cli")
    except ActionRefused as exc:
        db.session.rollback()
        fail(str(exc))
    db.session.commit()
    emit(request_dict(req), as_json, lambda d: "retry scheduled: " + human_row(d))


@requests_cli.command("cancel")
@click.argument("request_id", type=ID)
@click.option("--reason", default="cancelled by the merchant")
@click.option("--json", "as_json", is_flag=True)
def cancel(request_id, reason, as_json):
    """Stop a request for good."""
    req = load(request_id)
    if not cancel_request(req, clock_now(), reason):
        db.session.rollback()
        fail(f"request {request_id} is {req.status}; it cannot be cancelled")
    db.session.commit()
    db.session.refresh(req)
    emit(request_dict(req), as_json, human_row)


@click.command("dispatch")
@click.option(
    "--now",
    "now_given",
    help="Run the tick as if it were this time (ISO 8601 with offset).",
    # Parsed by click, so an unreadable time is reported as "Invalid value for '--now'".
    callback=lambda _ctx, _param, value: parse_time_option(value),
)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def dispatch_command(now_given, as_json):
    """Run one dispatch tick: send every due slot once."""
    when = now_given or clock_now()
    result = dispatch_due(when)
    record_tick(when, clock_now() if now_given is None else when, result, source="cli")
    report = result.to_dict()
    report["now"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    emit(report, as_json, lambda r: ", ".join(f"{k}={v}" for k, v in r.items() if k != "errors"))
