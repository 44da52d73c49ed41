"""The opt-out (suppression) list in the dashboard: see, add by hand, remove.

The work is done by ``app.optouts.services`` (shared with ``flask optouts``): adding
cancels the contact's pending requests like an unsubscribe link does; both record who did it.
"""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.input_guard import page_number
from app.optouts.forms import AddOptOutForm
from app.optouts.services import (
    CHANNELS,
    OptOutInvalid,
    OptOutNotFound,
    add_optout,
    optouts_query,
    remove_optout,
    source_label,
)
from app.web import ConfirmForm, dashboard_blueprint

bp = dashboard_blueprint("optouts", __name__, url_prefix="/opt-outs")

PER_PAGE = 50


def render_list(form, status=200):
    search = (request.args.get("q") or "").strip()[:254]
    channel = request.args.get("channel") if request.args.get("channel") in CHANNELS else None
    page = db.paginate(
        optouts_query(channel=channel, search=search),
        page=page_number(request.args),
        per_page=PER_PAGE,
        error_out=False,
        count=True,
    )
    args = {k: v for k, v in (("q", search), ("channel", channel)) if v}
    return render_template(
        "optouts/index.html",
        page=page,
        form=form,
        confirm=ConfirmForm(),
        search=search,
        channel=channel,
        args=args,
        source_label=source_label,
    ), status


@bp.get("/")
def index():
    return render_list(AddOptOutForm(formdata=None))


@bp.post("/")
def add():
    form = AddOptOutForm()
    if not form.validate():
        return render_list(form, 400)
    try:
        row, created = add_optout(
            form.channel.data, form.contact.data, now(), by=current_user.email, detail=form.detail.data
        )
    except OptOutInvalid as exc:
        db.session.rollback()
        message = str(exc)
        form[exc.field].errors.append(message[0].upper() + message[1:] + ".")
        return render_list(form, 400)
    db.session.commit()
    if created:
        flash(
            f"{row.contact} will receive no more {row.channel} messages; their pending requests are cancelled.",
            "success",
        )
    else:
        flash(
            f"{row.contact} was already on the {row.channel} opt-out list; their pending requests are cancelled.",
            "info",
        )
    return redirect(url_for("optouts.index"), 303)


@bp.post("/<int:optout_id>/remove")
def remove(optout_id):
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; please try again.")
    try:
        removed = remove_optout(optout_id, now(), by=current_user.email)
    except OptOutNotFound:
        abort(404, description=f"There is no opt-out {optout_id}.")
    db.session.commit()
    flash(
        f"{removed['contact']} is no longer on the {removed['channel']} opt-out list. Requests cancelled earlier "
        "stay cancelled; new orders may be asked again.",
        "success",
    )
    return redirect(url_for("optouts.index"), 303)
