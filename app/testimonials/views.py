"""Testimonials in the dashboard: tabs and filters, moderation (one or many), the player,
and the export."""

from flask import Response, abort, flash, redirect, render_template, request, stream_with_context, url_for

from app.clock import now
from app.extensions import db
from app.input_guard import database_id, page_number
from app.storage import StorageError, get_storage
from app.testimonials.export import export_chunks
from app.testimonials.models import Testimonial, poster_content_type
from app.testimonials.moderation import ACTION_WORDS, ACTIONS, FLAG_ACTIONS, TABS, apply_action
from app.testimonials.services import (
    FilterInvalid,
    TestimonialFilter,
    filter_choices,
    tab_counts,
    testimonials_query,
)
from app.web import ConfirmForm, dashboard_blueprint

bp = dashboard_blueprint("testimonials", __name__, url_prefix="/testimonials")

PER_PAGE = 20
MAX_BULK = 500
ALL_ACTIONS = {**ACTIONS, **FLAG_ACTIONS}


@bp.get("/")
def index():
    error, status_code = None, 200
    try:
        flt = TestimonialFilter.from_args(request.args)
    except FilterInvalid as exc:
        error, status_code, flt = str(exc), 400, TestimonialFilter()
    page = db.paginate(
        testimonials_query(flt), page=page_number(request.args), per_page=PER_PAGE, error_out=False, count=True
    )
    products, campaigns = filter_choices()
    return render_template(
        "testimonials/index.html",
        page=page,
        flt=flt,
        tabs=TABS,
        counts=tab_counts(flt),
        confirm=ConfirmForm(),
        products=products,
        campaigns=campaigns,
        error=error,
        has_rating=True,
    ), status_code


def testimonial_or_404(testimonial_id):
    testimonial = db.session.get(Testimonial, testimonial_id)
    if testimonial is None or testimonial.status == "erased":
        abort(404, description=f"There is no testimonial {testimonial_id}.")
    return testimonial


def back_url():
    back = request.form.get("back", "")
    return back if back.startswith("/testimonials") and "\\" not in back else url_for("testimonials.index")


def report(action, done, skipped):
    word = ACTION_WORDS[action]
    if done:
        flash(
            f"{len(done)} testimonial{'s' if len(done) != 1 else ''} {word}: "
            + ", ".join(f"#{i}" for i in done[:20])
            + ("…" if len(done) > 20 else ""),
            "success",
        )
    if skipped:
        flash(
            f"Not {word}: "
            + ", ".join(f"#{i}" for i in skipped[:20])
            + " (withdrawn by the customer, or already gone).",
            "warning",
        )


@bp.post("/<int:testimonial_id>/<action>")
def change(testimonial_id, action):
    if action not in ALL_ACTIONS:
        abort(404)
    testimonial_or_404(testimonial_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; please try again.")
    done, skipped = apply_action(action, [testimonial_id], now())
    db.session.commit()
    report(action, done, skipped)
    return redirect(back_url(), 303)


@bp.post("/bulk")
def bulk():
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; please try again.")
    action = request.form.get("action", "")
    if action not in ALL_ACTIONS:
        abort(400, description="Choose what to do with the selected testimonials (approve, reject or feature).")
    try:
        ids = sorted({database_id(value) for value in request.form.getlist("ids")})
    except ValueError:
        abort(400, description="The selection holds something that is not a testimonial id.")
    if not ids:
        abort(400, description="Select at least one testimonial first.")
    if len(ids) > MAX_BULK:
        abort(400, description=f"Select at most {MAX_BULK} testimonials at a time.")
    done, skipped = apply_action(action, ids, now())
    db.session.commit()
    report(action, done, skipped)
    return redirect(back_url(), 303)


def video_response(testimonial, as_attachment, key=None, content_type=None, what="video"):
    key = key or testimonial.video_key
    if not key:
        abort(404, description=f"This testimonial has no {what}.")
    extension = key.rsplit(".", 1)[-1]
    content_type = content_type or testimonial.video_content_type
    if content_type not in SERVED_TYPES:  # never a type a browser would run (HTML, SVG…)
        content_type, as_attachment = "application/octet-stream", True
    try:
        # Local storage answers Range requests (206); S3 redirects to a presigned URL.
        # Either way the player can seek.
        response = get_storage().response(
            key,
            content_type=content_type,
            as_attachment=as_attachment,
            download_name=f"testimonial-{testimonial.id}-order-{testimonial.request.order_id}.{extension}",
        )
    except StorageError:
        abort(404, description=f"The {what} file is missing from the video storage.")
    # A customer's file opened on its own is inert: no script, no plugin, no framing.
    response.headers["Content-Security-Policy"] = "default-src 'none'; media-src 'self'; img-src 'self'; sandbox"
    return response


# The content types the upload check accepts and the poster and transcode produce.
SERVED_TYPES = frozenset({"video/mp4", "video/webm", "video/quicktime", "image/jpeg", "image/png", "image/webp"})


@bp.get("/<int:testimonial_id>/poster")
def poster(testimonial_id):
    testimonial = testimonial_or_404(testimonial_id)
    return video_response(
        testimonial, False, testimonial.poster_key, poster_content_type(testimonial.poster_key or ""), "poster"
    )


@bp.get("/<int:testimonial_id>/playable")
def playable(testimonial_id):
    testimonial = testimonial_or_404(testimonial_id)
    return video_response(
        testimonial, False, testimonial.playable_key, testimonial.playable_content_type, "playable version"
    )


@bp.get("/<int:testimonial_id>/video")
def video(testimonial_id):
    return video_response(testimonial_or_404(testimonial_id), as_attachment=False)


@bp.get("/<int:testimonial_id>/download")
def download(testimonial_id):
    return video_response(testimonial_or_404(testimonial_id), as_attachment=True)


@bp.get("/export.zip")
def export():
    """The testimonials of the current filter as a ZIP, streamed (app.testimonials.export)."""
    try:
        flt = TestimonialFilter.from_args(request.args)
    except FilterInvalid as exc:
        abort(400, description=str(exc))
    _count, chunks = export_chunks(flt)
    stamp = now().strftime("%Y-%m-%d-%H%M")
    return Response(
        stream_with_context(chunks),
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="testimonials-{stamp}.zip"',
            "Cache-Control": "no-store",
        },
    )
