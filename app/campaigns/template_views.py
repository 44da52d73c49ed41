"""Message templates in the dashboard: list, edit with live preview, send a test."""

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from app.campaigns.forms import TemplateForm, TestSendForm
from app.campaigns.message_templates import (
    FIELDS,
    TemplateInvalid,
    preview,
    sample_context,
    save_template,
    send_test,
    sms_cost_warning,
    test_message,
    usage_counts,
    used_by,
)
from app.campaigns.models import MessageTemplate
from app.campaigns.rendering import VARIABLES, TemplateProblem
from app.campaigns.sms import sms_count
from app.clock import now
from app.extensions import db
from app.web import dashboard_blueprint

bp = dashboard_blueprint("templates", __name__, url_prefix="/templates")


def template_or_404(template_id):
    template = db.session.get(MessageTemplate, template_id)
    if template is None:
        abort(404, description=f"There is no template {template_id}.")
    return template


def form_values(form):
    return {name: form[name].data for name in FIELDS}


def preview_reminder():
    """Which reminder the preview shows (the editor's "Preview as" choice)."""
    return request.form.get("preview_reminder", type=int) if request.method == "POST" else None


@bp.get("/")
def index():
    templates = db.session.scalars(
        select(MessageTemplate).order_by(MessageTemplate.channel, MessageTemplate.kind, MessageTemplate.name)
    ).all()
    return render_template("message_templates/index.html", templates=templates, usage=usage_counts())


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = TemplateForm()
    if not form.is_submitted():
        form.channel.data = request.args.get("channel") if request.args.get("channel") in ("email", "sms") else "email"
        form.kind.data = request.args.get("kind") if request.args.get("kind") in ("initial", "reminder") else "initial"
        form.mode.data = "simple"  # a new email starts in the layout; HTML is one click away
    return edit_page(form, None)


@bp.route("/<int:template_id>", methods=["GET", "POST"])
def edit(template_id):
    template = template_or_404(template_id)
    form = TemplateForm(obj=template)
    return edit_page(form, template)


def edit_page(form, template):
    shown = None
    status = 200
    if form.is_submitted():
        if form.preview.data:
            # The Preview button without JavaScript: render, never save.
            if form.validate():
                shown = preview(form_values(form), preview_reminder())
                for field, message in shown["errors"].items():
                    form[field].errors.append(message)
            else:
                status = 400
        elif (
            form.validate() and (cost_warning := sms_cost_warning(form_values(form))) and not form.accept_segments.data
        ):
            # Asked before saving: a text that became 2+ messages costs that many times more.
            form.accept_segments.errors.append(f"Not saved yet. {cost_warning} Tick the box to save it anyway.")
        elif not form.errors:
            try:
                saved = save_template(template, form_values(form), now())
            except TemplateInvalid as exc:
                db.session.rollback()
                form[exc.field].errors.append(f"Not saved: {exc}.")
                status = 400
            else:
                db.session.commit()
                flash(f"Template “{saved.name}” saved. Campaigns using it send the new wording from now on.", "success")
                return redirect(url_for("templates.edit", template_id=saved.id), 303)
        else:
            status = 400
    if shown is None:
        shown = preview(form_values(form), preview_reminder())
    return render_template(
        "message_templates/form.html",
        form=form,
        template=template,
        preview=shown,
        variables=VARIABLES,
        sample=sample_context(form.kind.data),
        cost_warning=sms_cost_warning(form_values(form)) if form.channel.data == "sms" else None,
        test_form=TestSendForm(formdata=None),
        used_by=used_by(template) if template else [],
        typed=sms_count(form.text.data or ""),
    ), status


@bp.post("/preview")
def preview_json():
    """The live preview: the editor posts its fields (with the CSRF token) as a form.

    Only problems of the message itself are reported (a missing name is for the save)."""
    form = TemplateForm()
    form.validate()
    if "csrf_token" in form.errors:
        return jsonify({"error": "the page expired; reload it"}), 400
    result = preview(form_values(form), preview_reminder())
    result["cost_warning"] = sms_cost_warning(form_values(form))
    return jsonify(result)


@bp.post("/<int:template_id>/test")
def test_send(template_id):
    template = template_or_404(template_id)
    form = TestSendForm()
    if form.validate():
        try:
            message = test_message(template, form.to.data)
        except (TemplateInvalid, TemplateProblem) as exc:
            message = str(exc)
            form.to.errors.append(f"{message[0].upper()}{message[1:]}.")
        else:
            template_id = template.id
            db.session.commit()  # no transaction open while the provider works
            result = send_test(message)
            if result.ok:
                flash(
                    f"Test sent to {form.to.data.strip()} through {result.provider}: the provider accepted it "
                    f"(message id {result.message}).",
                    "success",
                )
            else:
                flash(
                    f"The test to {form.to.data.strip()} was not sent: {result.provider} answered “{result.message}”.",
                    "danger",
                )
            return redirect(url_for("templates.edit", template_id=template_id) + "#test-send", 303)
    edit_form = TemplateForm(obj=template, formdata=None)
    return render_template(
        "message_templates/form.html",
        form=edit_form,
        template=template,
        preview=preview(form_values(edit_form)),
        variables=VARIABLES,
        sample=sample_context(edit_form.kind.data),
        test_form=form,
        used_by=used_by(template),
        typed=sms_count(edit_form.text.data or ""),
    ), 400
