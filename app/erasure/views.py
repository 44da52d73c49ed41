"""The dashboard's "Erase this customer": a confirmation that names what goes, then the
erasure; and the list of erasures with "Lift" (take orders from the contact again)."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.clock import now
from app.erasure.services import ErasureInvalid, erase, erasure_dicts, lift, plan_erasure
from app.extensions import db
from app.input_guard import database_id
from app.lifecycle.models import TestimonialRequest
from app.web import ConfirmForm, dashboard_blueprint

bp = dashboard_blueprint("erasure", __name__, url_prefix="/customers")


def contact_from_args(args):
    """The contact to erase: ``contact`` as typed, or the email (else phone) of ``request``."""
    contact = (args.get("contact") or "").strip()[:254]
    if contact:
        return contact
    try:
        request_id = database_id(args.get("request") or "")
    except ValueError:
        return None
    req = db.session.get(TestimonialRequest, request_id)
    return (req.customer_email or req.customer_phone) if req else None


@bp.get("/erase")
def confirm():
    contact = contact_from_args(request.args)
    plan, error, status = None, None, 200
    if contact:
        try:
            plan = plan_erasure(contact)
        except ErasureInvalid as exc:
            error, status = str(exc), 400
    elif request.args.get("request") or request.args.get("contact"):
        error, status = "There is no customer contact to erase there (already erased, or no such request).", 404
    return render_template(
        "erasure/confirm.html", contact=contact, plan=plan, error=error, form=ConfirmForm(), erasures=erasure_dicts()
    ), status


@bp.post("/erase")
def run():
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; please try again.")
    contact = (request.form.get("contact") or "").strip()[:254]
    if request.form.get("confirmed") != "yes":
        abort(400, description="Tick the confirmation box: an erasure cannot be undone.")
    try:
        plan = erase(contact, now(), by=current_user.email)
    except ErasureInvalid as exc:
        abort(400, description=str(exc))
    db.session.commit()
    flash(
        f"Erased {', '.join(sorted(plan.emails | plan.phones))}: {plan.summary()}. "
        "A later order from this customer will be skipped.",
        "success",
    )
    return redirect(url_for(".confirm"), 303)


@bp.post("/lift")
def lift_view():
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; please try again.")
    contact = (request.form.get("contact") or "").strip()[:254]
    try:
        lifted = lift(contact, now(), by=current_user.email)
    except ErasureInvalid as exc:
        abort(400, description=str(exc))
    if not lifted:
        abort(404, description="This contact is not on the erasure list (or was lifted already).")
    db.session.commit()
    flash(f"Orders from {contact} are taken again (what was erased stays erased).", "success")
    return redirect(url_for(".confirm"), 303)
