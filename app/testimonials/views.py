"""Testimonials in the dashboard: the list with a video player, approve / hide, download."""

import os

from flask import abort, current_app, flash, redirect, render_template, request, send_from_directory, url_for

from app.campaigns.forms import ConfirmForm
from app.dashboard import dashboard_blueprint
from app.extensions import db
from app.input_guard import database_id, page_number
from app.lifecycle.models import Testimonial
from app.testimonials.services import ACTIONS, STATUSES, moderate, testimonials_query

bp = dashboard_blueprint("testimonials", __name__, url_prefix="/testimonials")

PER_PAGE = 20


@bp.get("/")
def index():
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    request_id = request.args.get("request", type=database_id)
    page = db.paginate(
        testimonials_query(status, request_id),
        page=page_number(request.args),
        per_page=PER_PAGE,
        error_out=False,
        count=True,
    )
    return render_template(
        "testimonials/index.html", page=page, status=status, statuses=STATUSES, confirm=ConfirmForm(),
        request_id=request_id,
    )


def testimonial_or_404(testimonial_id):
    testimonial = db.session.get(Testimonial, testimonial_id)
    if testimonial is None:
        abort(404, description=f"There is no testimonial {testimonial_id}.")
    return testimonial


@bp.post("/<int:testimonial_id>/<action>")
def change(testimonial_id, action):
    if action not in ACTIONS:
        abort(404)
    testimonial = testimonial_or_404(testimonial_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; please try again.")
    status = moderate(testimonial, action)
    db.session.commit()
    flash(f"Testimonial #{testimonial.id} is now {status}.", "success")
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/testimonials") else url_for("testimonials.index"), 303)


def video_response(testimonial, as_attachment):
    if not testimonial.video_filename:
        abort(404, description="This testimonial has no video.")
    folder = current_app.config["UPLOAD_DIR"]
    if not os.path.isfile(os.path.join(folder, testimonial.video_filename)):
        abort(404, description="The video file is missing from the upload folder.")
    extension = testimonial.video_filename.rsplit(".", 1)[-1]
    # send_from_directory answers Range requests (206), so browsers can seek in the player.
    return send_from_directory(
        folder,
        testimonial.video_filename,
        mimetype=testimonial.video_content_type or "application/octet-stream",
        as_attachment=as_attachment,
        conditional=True,
        max_age=0,
        download_name=f"testimonial-{testimonial.id}-order-{testimonial.request.order_id}.{extension}",
    )


@bp.get("/<int:testimonial_id>/video")
def video(testimonial_id):
    return video_response(testimonial_or_404(testimonial_id), as_attachment=False)


@bp.get("/<int:testimonial_id>/download")
def download(testimonial_id):
    return video_response(testimonial_or_404(testimonial_id), as_attachment=True)
