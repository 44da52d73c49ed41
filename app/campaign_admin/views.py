"""Campaigns in the dashboard: list, create, edit, pause / resume / archive."""

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.campaign_admin.services import (
    DEFAULTS,
    CampaignInvalid,
    create_campaign,
    default_template_ids,
    set_status,
    update_campaign,
)
from app.campaigns.forms import CampaignForm
from app.campaigns.models import ARCHIVED, Campaign
from app.clock import now
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.states import CANCELLABLE, STATUSES
from app.web import ConfirmForm, dashboard_blueprint

bp = dashboard_blueprint("campaigns", __name__, url_prefix="/campaigns")

STATUS_ACTIONS = {
    "pause": "Paused: no request of this campaign is sent until you resume it; new orders are still "
    "recorded and their first message waits too.",
    "resume": "Resumed: held messages whose time has passed go out within the next minute or so, the "
    "rest at their planned time.",
    "archive": "Archived: the campaign stops for good and its pending requests are cancelled.",
}


def request_counts(campaign_ids=None):
    """{campaign_id: {status: count}} and {campaign_id: last send time}."""
    query = select(TestimonialRequest.campaign_id, TestimonialRequest.status, func.count()).group_by(
        TestimonialRequest.campaign_id, TestimonialRequest.status
    )
    last = select(TestimonialRequest.campaign_id, func.max(TestimonialRequest.last_sent_at)).group_by(
        TestimonialRequest.campaign_id
    )
    if campaign_ids is not None:
        query = query.where(TestimonialRequest.campaign_id.in_(campaign_ids))
        last = last.where(TestimonialRequest.campaign_id.in_(campaign_ids))
    counts = {}
    for campaign_id, status, count in db.session.execute(query):
        counts.setdefault(campaign_id, {})[status] = count
    return counts, dict(db.session.execute(last).all())


def pending_count(campaign):
    return db.session.scalar(
        select(func.count()).where(
            TestimonialRequest.campaign_id == campaign.id, TestimonialRequest.status.in_(CANCELLABLE)
        )
    )


def campaign_or_404(campaign_id):
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404, description=f"There is no campaign {campaign_id}.")
    return campaign


def apply_invalid(form, exc):
    """Show a service's CampaignInvalid on the field it names (or above the form)."""
    field = form._fields.get(exc.field)
    message = str(exc)
    message = "SMS" + message[3:] if message.startswith("sms") else message[0].upper() + message[1:]
    message += "" if message.endswith(".") else "."
    if field is not None:
        field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]
    else:
        form.form_errors.append(message)


@bp.get("/")
def index():
    campaigns = db.session.scalars(
        select(Campaign).order_by((Campaign.status == ARCHIVED), Campaign.name, Campaign.id)
    ).all()
    counts, last_sent = request_counts()
    return render_template(
        "campaigns/index.html", campaigns=campaigns, counts=counts, last_sent=last_sent, statuses=STATUSES
    )


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = CampaignForm(creating=True)
    if form.is_submitted() and form.validate():
        try:
            campaign = create_campaign(now(), **form.settings())
        except CampaignInvalid as exc:
            db.session.rollback()
            apply_invalid(form, exc)
        else:
            db.session.commit()
            flash(f"Campaign “{campaign.name}” created.", "success")
            return redirect(url_for("campaigns.edit", campaign_id=campaign.id), 303)
    elif not form.is_submitted():
        form.fill_from(Campaign(**_defaults()))
    status = 400 if form.is_submitted() else 200
    return render_template("campaigns/form.html", form=form, campaign=None), status


def _defaults():
    values = {**DEFAULTS, **default_template_ids(), "name": ""}
    values.pop("status")
    return {**values, "include_products": [], "exclude_products": [], "exclude_tags": [], "min_order_total": None}


@bp.route("/<int:campaign_id>", methods=["GET", "POST"])
def edit(campaign_id):
    campaign = campaign_or_404(campaign_id)
    form = CampaignForm()
    if form.is_submitted() and form.validate():
        try:
            replanned = update_campaign(campaign, now(), **form.settings())
        except CampaignInvalid as exc:
            db.session.rollback()
            apply_invalid(form, exc)
        else:
            db.session.commit()
            flash("Saved. Messages not sent yet follow the new settings; sent ones are unchanged.", "success")
            if replanned.left:
                one = replanned.left == 1
                flash(
                    f"{replanned.left} request{' was' if one else 's were'} being sent (or answered) while you "
                    f"saved and kept the timing planned before; save again to replan {'it' if one else 'them'} "
                    "from the new settings.",
                    "warning",
                )
            return redirect(url_for("campaigns.edit", campaign_id=campaign.id), 303)
    elif not form.is_submitted():
        form.fill_from(campaign)
    counts, last_sent = request_counts([campaign.id])
    status = 400 if form.is_submitted() else 200
    return render_template(
        "campaigns/form.html",
        form=form,
        campaign=campaign,
        counts=counts.get(campaign.id, {}),
        last_sent=last_sent.get(campaign.id),
        statuses=STATUSES,
        pending=pending_count(campaign),
        actions=STATUS_ACTIONS,
        confirm=ConfirmForm(),
    ), status


def change_status(campaign_id, action):
    campaign = campaign_or_404(campaign_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, description="The form expired; please try again.")
    try:
        cancelled = set_status(campaign, action, now())
    except CampaignInvalid as exc:
        db.session.rollback()
        flash(f"Nothing changed: {exc}.", "danger")
        return redirect(url_for("campaigns.edit", campaign_id=campaign.id), 303)
    db.session.commit()
    extra = f" {cancelled} pending request{'s' if cancelled != 1 else ''} cancelled." if action == "archive" else ""
    flash(f"“{campaign.name}” — {STATUS_ACTIONS[action]}{extra}", "success")
    return redirect(url_for("campaigns.edit", campaign_id=campaign.id), 303)


@bp.post("/<int:campaign_id>/pause")
def pause(campaign_id):
    return change_status(campaign_id, "pause")


@bp.post("/<int:campaign_id>/resume")
def resume(campaign_id):
    return change_status(campaign_id, "resume")


@bp.route("/<int:campaign_id>/archive", methods=["GET", "POST"])
def archive(campaign_id):
    """GET: the confirmation page (what archiving cancels); POST: archive."""
    campaign = campaign_or_404(campaign_id)
    if campaign.is_archived:
        flash("This campaign is already archived.", "info")
        return redirect(url_for("campaigns.edit", campaign_id=campaign.id), 303)
    if request.method == "POST":
        return change_status(campaign_id, "archive")
    return render_template(
        "campaigns/archive.html", campaign=campaign, pending=pending_count(campaign), confirm=ConfirmForm()
    )
