"""Testimonials in the dashboard: the list with a video player, approve / hide, download."""

from flask import abort, flash, redirect, render_template, request, url_for

from app.campaigns.forms import ConfirmForm
from app.dashboard import dashboard_blueprint
from app.extensions import db
from app.input_guard import database_id, page_number
from app.storage import StorageError, get_storage
from app.testimonials.models import Testimonial
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
    if not testimonial.video_key:
        abort(404, description="This testimonial has no video.")
    extension = testimonial.video_key.rsplit(".", 1)[-1]
    try:
        # Local storage answers Range requests (206); S3 redirects to a presigned URL.
        # Either way the player can seek.
        return get_storage().response(
            testimonial.video_key,
            content_type=testimonial.video_content_type or "application/octet-stream",
            as_attachment=as_attachment,
            download_name=f"testimonial-{testimonial.id}-order-{testimonial.request.order_id}.{extension}",
        )
    except StorageError:
        abort(404, description="The video file is missing from the video storage.")


@bp.get("/<int:testimonial_id>/video")
def video(testimonial_id):
    return video_response(testimonial_or_404(testimonial_id), as_attachment=False)


@bp.get("/<int:testimonial_id>/download")
def download(testimonial_id):
    return video_response(testimonial_or_404(testimonial_id), as_attachment=True)
