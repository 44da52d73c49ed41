"""The Requests Log (spec §6.3 dead-letter visibility, §9 runbook): list, detail, the
merchant's actions (retry, resend, cancel, bulk retry) and the CSV export.

Actions are POST forms with a CSRF token. A browser with JavaScript confirms with
``confirm()`` and posts ``confirmed=yes``; without JavaScript the first post answers with
a confirmation page whose button posts again with ``confirmed=yes``.
"""

import csv
import io
import re

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import String
from werkzeug.routing import BuildError

from app.clock import now as clock_now
from app.dashboard import dashboard_blueprint
from app.extensions import db
from app.input_guard import page_number
from app.lifecycle import queries
from app.lifecycle.forms import RequestFilterForm
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import (
    RESENDABLE,
    ActionRefused,
    cancel_request,
    last_sent_slot,
    link_for,
    resend_request,
    retry_request,
    slot_name,
)
from app.lifecycle.states import CANCELLABLE, FAILED, channel_failures

bp = dashboard_blueprint("requests", __name__, url_prefix="/requests")

ACTIONS = {
    "retry": "Retry",
    "resend": "Resend",
    "cancel": "Cancel request",
}


def read_filter():
    """The filter in the query string (GET) or in the posted form (bulk retry)."""
    campaigns = queries.campaign_names()
    source = request.form if request.method == "POST" else request.args
    form = RequestFilterForm(source, campaigns)
    if form.validate():
        return form, form.to_filter(), campaigns
    return form, None, campaigns


@bp.get("/")
def index():
    form, flt, campaigns = read_filter()
    if flt is None:
        return render_template("requests/index.html", form=form, flt=None, page=None, campaigns=campaigns,
                               failed_in_filter=0, filter_args={}), 400
    number = page_number(request.args)
    page = queries.requests_page(flt, number)
    failed_in_filter = failed_count(flt, page)
    return render_template(
        "requests/index.html", form=form, flt=flt, page=page, campaigns=campaigns,
        failed_in_filter=failed_in_filter, filter_args=flt.to_args(), mask_phone=queries.mask_phone,
        cap=queries.COUNT_CAP,
    )


def failed_count(flt, page):
    """How many failed requests the filter matches (the bulk retry button), reusing what
    the page already knows before asking the database again."""
    if page.number == 1 and not page.has_next:
        return sum(r.status == FAILED for r in page.rows)  # the whole result is on this page
    if flt.status == FAILED:
        return page.total + (1 if page.capped else 0)
    return queries.count_failed(flt)


@bp.get("/<int:request_id>")
def detail(request_id):
    return render_detail(load(request_id))


def load(request_id):
    req = db.session.get(TestimonialRequest, request_id)
    if req is None:
        abort(404, description=f"There is no request #{request_id}.")
    return req


def render_detail(req, status=200):
    config = current_app.config
    outbox_in_use = "outbox" in (config["EMAIL_PROVIDER"], config["SMS_PROVIDER"])
    events = queries.request_events(req.id)
    context = {
        "req": req,
        "campaign": req.campaign,
        "events": events,
        # each channel's current failure, the same reading of the events as last_error
        "failures": channel_failures(events),
        "slot_sends": queries.request_slot_sends(req.id),
        "messages": queries.request_outbox_messages(req.id) if outbox_in_use else [],
        "outbox_in_use": outbox_in_use,
        "link": link_for(req),
        "mask_phone": queries.mask_phone,
        "available": available_actions(req),
        "last_sent": last_sent_slot(req.id),
        "slot_name": slot_name,
        "campaign_url": optional_url("campaigns.edit", campaign_id=req.campaign_id),
    }
    return render_template("requests/detail.html", **context), status


def optional_url(endpoint, **values):
    """A link to another screen when that screen exists in this build (else None)."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def available_actions(req):
    """Which buttons the detail page offers (the services decide for real)."""
    actions = []
    if req.status == FAILED and req.submitted_at is None:
        actions.append("retry")
    if req.status in RESENDABLE and req.sent_at is not None and req.submitted_at is None:
        actions.append("resend")
    if req.status in CANCELLABLE:
        actions.append("cancel")
    return actions


def confirmation_text(req, action):
    if action == "retry":
        return (f"Retry request #{req.id}? {slot_name(req.next_slot).capitalize()} is sent again at the next "
                "dispatch tick, on every channel, including ones the provider refused before.")
    if action == "resend":
        slot = last_sent_slot(req.id)
        what = slot_name(slot) if slot is not None else "the last message"
        return (f"Resend {what} of request #{req.id} to the customer? It goes out again at the next dispatch "
                "tick. Reminders still to come stay at their planned times.")
    return (f"Cancel request #{req.id}? No further messages are sent for it and its link stops accepting "
            "a testimonial. This cannot be undone.")


@bp.post("/<int:request_id>/<action>")
def act(request_id, action):
    if action not in ACTIONS:
        abort(404)
    req = load(request_id)
    back = local_path(request.form.get("next"))
    if request.form.get("confirmed") != "yes":
        return render_template(
            "requests/confirm.html", title=f"{ACTIONS[action].split()[0]} request #{req.id}",
            question=confirmation_text(req, action), action_url=url_for(".act", request_id=req.id, action=action),
            button=ACTIONS[action], danger=action == "cancel", hidden={"next": back} if back else {},
            back=back or url_for(".detail", request_id=req.id),
        )
    now, by = clock_now(), current_user.email
    try:
        message = perform(req, action, now, by)
    except ActionRefused as exc:
        db.session.rollback()
        flash(f"Nothing was changed: {exc}.", "danger")
        return render_detail(load(request_id), status=409)
    db.session.commit()
    flash(message, "success")
    return redirect(back or url_for(".detail", request_id=request_id))


def local_path(target):
    """A path on this site to return to after an action (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def perform(req, action, now, by):
    if action == "retry":
        retry_request(req, now, by=by)
        return f"Request #{req.id}: retry scheduled; {slot_name(req.next_slot)} goes out at the next dispatch tick."
    if action == "resend":
        resend_request(req, now, by=by)
        paused = req.campaign.status == "paused"
        return (f"Request #{req.id}: resend of {slot_name(req.next_slot)} scheduled"
                + ("; the campaign is paused, so it goes out when the campaign is resumed." if paused
                   else "; it goes out at the next dispatch tick."))
    status = req.status
    if not cancel_request(req, now, f"cancelled by {by} from the Requests Log"):
        raise ActionRefused(f"request {req.id} is {status}, so it cannot be cancelled (only scheduled, queued, "
                            "sent, clicked or failed requests can)")
    return f"Request #{req.id} cancelled: nothing more will be sent for it."


@bp.post("/retry-failed")
def retry_failed():
    form, flt, _campaigns = read_filter()
    if flt is None:
        flash("Nothing was retried: the filter is not valid.", "danger")
        return redirect(url_for(".index"))
    ids = queries.failed_ids(flt)
    if request.form.get("confirmed") != "yes":
        return render_template(
            "requests/confirm.html", title="Retry failed requests",
            question=(f"Retry all {len(ids)} failed request{'s' if len(ids) != 1 else ''} in this filter? "
                      "Each one's failed message is sent again at the next dispatch tick."),
            action_url=url_for(".retry_failed"), button=f"Retry {len(ids)}", danger=False,
            hidden=flt.to_args(), back=url_for(".index", **flt.to_args()),
        )
    now, by = clock_now(), current_user.email
    retried, refused = 0, 0
    for request_id in ids:
        try:
            retry_request(db.session.get(TestimonialRequest, request_id), now, by=by)
            retried += 1
        except ActionRefused:
            refused += 1  # changed since the page was shown (e.g. submitted meanwhile)
    db.session.commit()
    message = f"Retry scheduled for {retried} failed request{'s' if retried != 1 else ''}."
    if refused:
        message += f" {refused} had changed meanwhile and were left alone."
    flash(message, "success" if retried else "info")
    return redirect(url_for(".index", **flt.to_args()))


@bp.get("/export.csv")
def export():
    """Every request matching the filter, with full phone numbers (the merchant's own data).

    Streamed a chunk at a time, so memory stays flat however many rows match; the read
    transaction ends after each chunk is fetched, before its text goes to the client (on
    SQLite a transaction holds the write lock, and a slow download must not stop the
    dispatcher or the webhooks)."""
    _form, flt, _campaigns = read_filter()
    if flt is None:
        abort(400, description="The filter is not valid; fix it on the Requests Log page first.")

    def pieces():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(queries.EXPORT_HEADER)
        for rows in queries.export_chunks(flt):
            db.session.rollback()
            writer.writerows(map(spreadsheet_safe, rows))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue()  # the header of an empty export

    stamp = clock_now().strftime("%Y-%m-%d-%H%M")
    return Response(
        stream_with_context(pieces()), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="requests-{stamp}.csv"'},
    )


# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_START = frozenset("=+-@\t\r")
E164 = re.compile(r"\+[0-9]{6,15}")
# Cells holding text that came from outside: the only ones that need checking.
TEXT_CELLS = tuple(i for i, (_, column) in enumerate(queries.EXPORT_COLUMNS)
                   if isinstance(getattr(column, "type", None), String))


def spreadsheet_safe(row):
    """Neutralise spreadsheet formulas in text that came from outside (names, titles, ids).

    A quote in front of a cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR keeps
    it text. Phone numbers (``+15551234567``, E.164 as intake stores them) are left as they
    are: digits only, nothing a spreadsheet could run.
    """
    row = list(row)  # also: the csv module writes lists much faster than result rows
    for i in TEXT_CELLS:
        value = row[i]
        if value and value[0] in FORMULA_START and not E164.fullmatch(value):
            row[i] = "'" + value
    return row
