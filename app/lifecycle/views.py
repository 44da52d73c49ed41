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
from sqlalchemy import String, select
from werkzeug.routing import BuildError

from app.campaigns.models import CHANNEL_NAMES
from app.clock import now as clock_now
from app.extensions import db
from app.input_guard import page_number
from app.lifecycle import failures as failure_sentences
from app.lifecycle import queries
from app.lifecycle.cancellations import explain_cancel
from app.lifecycle.forms import ContactForm, RequestFilterForm
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.names import mask_email, short_time
from app.lifecycle.next_step import next_step
from app.lifecycle.services import (
    CONTACT_EDITABLE,
    RESENDABLE,
    ActionRefused,
    ContactInvalid,
    cancel_request,
    change_contact,
    last_sent_slot,
    link_for,
    resend_request,
    retry_request,
    slot_name,
)
from app.lifecycle.states import CANCELLABLE, CANCELLED, FAILED, SENDABLE, channel_failures
from app.outbox.models import messages_of_request
from app.providers.base import OPTED_OUT, SETUP, TEMPLATE
from app.web import dashboard_blueprint

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
        return render_template(
            "requests/index.html",
            form=form,
            flt=None,
            page=None,
            campaigns=campaigns,
            failed_in_filter=0,
            filter_args={},
        ), 400
    number = page_number(request.args)
    page = queries.requests_page(flt, number)
    failed_in_filter = failed_count(flt, page)
    notes = queries.row_notes(page.rows)
    statuses = queries.campaign_statuses()
    rows = [row_view(r, notes.get(r.id), statuses.get(r.campaign_id)) for r in page.rows]
    return render_template(
        "requests/index.html",
        form=form,
        flt=flt,
        page=page,
        rows=rows,
        campaigns=campaigns,
        failed_in_filter=failed_in_filter,
        filter_args=flt.to_args(),
        mask_phone=queries.mask_phone,
        mask_email=mask_email,
        bulk_question=bulk_retry_question(
            failed_in_filter,
            refused_for_good(queries.failed_ids(flt) if 0 < failed_in_filter <= BULK_CHECK_LIMIT else []),
        ),
        cap=queries.COUNT_CAP,
        short_time=short_time,
    )


def reasons_for(req, event_types, failures=None):
    """The request's current failures in plain words (one Explanation per channel), from
    the stored fields (``failures``: the request's standing failures, when already read)."""
    return failure_sentences.explain_failures(
        req.failures if failures is None else failures,
        status=req.status,
        attempts=req.attempts,
        retrying=bool(req.attempts and req.next_send_at and req.status in SENDABLE),
        contact_changed=failure_sentences.changed_since_failure(event_types),
    )


def row_view(req, note, campaign_status):
    """What one row of the log shows beyond the request's own columns."""
    event_types, cancel_detail, failures = note or ([], None, [])
    reasons = reasons_for(req, event_types, failures)
    return {
        "req": req,
        "reasons": reasons,
        "cancel_reason": explain_cancel(cancel_detail) if req.status == CANCELLED else None,
        "next_step": next_step(
            req,
            campaign_status=campaign_status,
            max_attempts=current_app.config["MAX_SEND_ATTEMPTS"],
        ),
        "retry_question": retry_question(req, reasons),
    }


def retry_question(req, reasons):
    """The Retry confirmation, with a warning when Retry alone would fail the same way."""
    question = (
        f"Retry request #{req.id}? {explain_slot(req).capitalize()} is sent again {next_run()}, on every "
        "channel, including ones the provider refused before."
    )
    warnings = []
    for reason in reasons:
        name = CHANNEL_NAMES.get(reason.channel, "The message")
        if reason.fix_contact:
            contact = req.customer_phone if reason.channel == "sms" else req.customer_email
            shown = queries.mask_phone(contact) if reason.channel == "sms" else contact
            warnings.append(
                f"{name}: the provider refused {shown or 'this contact'} permanently; it will be "
                "refused again unless you correct the contact details first."
            )
        elif reason.kind == TEMPLATE:
            warnings.append(f"{name}: the template error happens again unless you fix the template first.")
        elif reason.kind == SETUP:
            warnings.append(f"{name}: the provider refuses your account settings; fix them first.")
        elif reason.kind == OPTED_OUT:
            warnings.append(f"{name}: the customer opted out; nothing is sent on this channel.")
    if warnings:
        question += " Warning: " + " ".join(warnings)
    return question


def explain_slot(req):
    return slot_name(req.next_slot)


def next_run():
    """When a message made due now goes out, in the merchant's words (not "the next dispatch tick")."""
    config = current_app.config
    if not config["SCHEDULER_ENABLED"]:
        return "the next time sending runs (the built-in scheduler is off: run flask dispatch)"
    minutes = round(config["SCHEDULER_INTERVAL_SECONDS"] / 60)
    return "within about a minute" if minutes <= 1 else f"within about {minutes} minutes"


def bulk_retry_question(count, refused=None):
    question = (
        f"Retry all {count:,} failed request{'s' if count != 1 else ''} in this filter? Each one's failed "
        f"message is sent again {next_run()}."
    )
    if refused:
        question += (
            f" Warning: {refused:,} of them {'was' if refused == 1 else 'were'} refused for good (a wrong "
            "address or number) and will be refused again unless you correct the contact details first."
        )
    return question


# Past this many failed requests, the bulk Retry question does not look for doomed ones.
BULK_CHECK_LIMIT = 500


def refused_for_good(ids):
    """How many of these failed requests Retry alone would see refused again: a contact the
    provider refused permanently and nobody corrected since (the same test as one row's Retry)."""
    if not ids or len(ids) > BULK_CHECK_LIMIT:
        return None
    rows = db.session.scalars(select(TestimonialRequest).where(TestimonialRequest.id.in_(ids))).all()
    notes = queries.row_notes(rows)
    return sum(any(reason.fix_contact for reason in reasons_for(req, *_note(notes, req))) for req in rows)


def _note(notes, req):
    event_types, _, failures = notes.get(req.id, ([], None, []))
    return event_types, failures


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
    # each channel's current failure, the same reading of the events as the request's own
    failures = [e.failure for e in channel_failures(events).values()]
    reasons = reasons_for(req, [e.type for e in events], failures)
    context = {
        "req": req,
        "campaign": req.campaign,
        "events": events,
        "failures": list(zip(failures, reasons, strict=True)),
        "retry_question": retry_question(req, reasons),
        "questions": {action: confirmation_text(req, action, reasons) for action in available_actions(req)},
        "next_step": next_step(
            req,
            campaign_status=req.campaign.status,
            max_attempts=config["MAX_SEND_ATTEMPTS"],
        ),
        "testimonial": req.testimonial,
        "testimonials_url": optional_url("testimonials.index", request=req.id),
        "cancel_reason": next((explain_cancel(e.detail) for e in reversed(events) if e.type == "cancelled"), None)
        if req.status == CANCELLED
        else None,
        "can_edit_contact": req.status in CONTACT_EDITABLE,
        "slot_sends": queries.request_slot_sends(req.id),
        "messages": messages_of_request(req.id) if outbox_in_use else [],
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


def confirmation_text(req, action, reasons=None):
    """The question asked before an action: the same words in the browser's dialog and on the
    confirmation page (without JavaScript)."""
    if action == "retry":
        if reasons is None:
            reasons = reasons_for(req, [e.type for e in queries.request_events(req.id)])
        return retry_question(req, reasons)
    if action == "resend":
        slot = last_sent_slot(req.id)
        what = slot_name(slot) if slot is not None else "the last message"
        return (
            f"Resend {what} of request #{req.id} to the customer? It goes out again {next_run()}. "
            "Reminders still to come stay at their planned times."
        )
    return (
        f"Cancel request #{req.id}? No further messages are sent for it and its link stops accepting "
        "a testimonial. This cannot be undone."
    )


@bp.post("/<int:request_id>/<action>")
def act(request_id, action):
    if action not in ACTIONS:
        abort(404)
    req = load(request_id)
    back = local_path(request.form.get("next"))
    if request.form.get("confirmed") != "yes":
        reasons = reasons_for(req, [e.type for e in queries.request_events(req.id)])
        # Retry alone would be refused again: offer the fix as well, not only the doomed button.
        fix_first = action == "retry" and req.status in CONTACT_EDITABLE and any(r.fix_contact for r in reasons)
        return render_template(
            "requests/confirm.html",
            title=f"{ACTIONS[action].split()[0]} request #{req.id}",
            question=confirmation_text(req, action, reasons),
            action_url=url_for(".act", request_id=req.id, action=action),
            button=ACTIONS[action],
            danger=action == "cancel",
            hidden={"next": back} if back else {},
            back=back or url_for(".detail", request_id=req.id),
            fix_url=url_for(".contact", request_id=req.id) if fix_first else None,
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
        return f"Request #{req.id}: retry scheduled; {slot_name(req.next_slot)} goes out {next_run()}."
    if action == "resend":
        resend_request(req, now, by=by)
        paused = req.campaign.is_paused
        return f"Request #{req.id}: resend of {slot_name(req.next_slot)} scheduled" + (
            "; the campaign is paused, so it goes out when the campaign is resumed."
            if paused
            else f"; it goes out {next_run()}."
        )
    status = req.status
    if not cancel_request(req, now, f"cancelled by {by} from the Requests Log"):
        raise ActionRefused(
            f"request {req.id} is {status}, so it cannot be cancelled (only scheduled, queued, "
            "sent, clicked or failed requests can)"
        )
    return f"Request #{req.id} cancelled: nothing more will be sent for it."


@bp.route("/<int:request_id>/contact", methods=["GET", "POST"])
def contact(request_id):
    """Correct the customer's e-mail address / phone number (then Retry uses them)."""
    req = load(request_id)
    form = ContactForm(
        request.form if request.method == "POST" else None,
        data={"email": req.customer_email or "", "phone": req.customer_phone or ""},
    )
    status = 200
    if req.status not in CONTACT_EDITABLE:
        status = 409 if request.method == "POST" else 200
        return render_template("requests/contact.html", req=req, form=form, closed=True), status
    if request.method == "POST":
        if form.validate():
            try:
                changed = change_contact(
                    req, clock_now(), email=form.email.data, phone=form.phone.data, by=current_user.email
                )
            except ContactInvalid as exc:
                db.session.rollback()
                target = getattr(form, exc.field).errors if exc.field else form.form_errors
                target.append(str(exc))
                status = 400
            except ActionRefused as exc:
                db.session.rollback()
                form.form_errors.append(f"Nothing was changed: {exc}.")
                status = 409
            else:
                db.session.commit()
                what = " and ".join("email address" if f == "email" else "phone number" for f in changed)
                hint = (
                    " Press Retry to send the failed message to it."
                    if req.status == FAILED
                    else (" Later messages go to the new details.")
                )
                flash(f"Request #{req.id}: {what} corrected.{hint}", "success")
                return redirect(url_for(".detail", request_id=req.id))
        else:
            status = 400
    return render_template(
        "requests/contact.html", req=req, form=form, closed=False, mask_phone=queries.mask_phone
    ), status


@bp.post("/retry-failed")
def retry_failed():
    form, flt, _campaigns = read_filter()
    if flt is None:
        flash("Nothing was retried: the filter is not valid.", "danger")
        return redirect(url_for(".index"))
    ids = queries.failed_ids(flt)
    if request.form.get("confirmed") != "yes":
        return render_template(
            "requests/confirm.html",
            title="Retry failed requests",
            question=bulk_retry_question(len(ids), refused_for_good(ids)),
            action_url=url_for(".retry_failed"),
            button=f"Retry {len(ids)}",
            danger=False,
            hidden=flt.to_args(),
            back=url_for(".index", **flt.to_args()),
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
        stream_with_context(pieces()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="requests-{stamp}.csv"'},
    )


# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_START = frozenset("=+-@\t\r")
E164 = re.compile(r"\+[0-9]{6,15}")
# Cells holding text that came from outside: the only ones that need checking.
TEXT_CELLS = (
    *(i for i, (_, column) in enumerate(queries.EXPORT_COLUMNS) if isinstance(getattr(column, "type", None), String)),
    len(queries.EXPORT_COLUMNS),  # last_error: the providers' words
)


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
