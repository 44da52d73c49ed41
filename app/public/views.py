"""The customer's pages: their personal link ``/r/<token>`` and unsubscribe ``/u/<token>``."""

import logging
import os

from flask import Blueprint, abort, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from app.clock import now
from app.extensions import csrf, db
from app.lifecycle.services import find_by_token, record_click
from app.lifecycle.states import CANCELLED, EXPIRED, SUBMITTED
from app.public.services import SubmissionRefused, submit_testimonial, unsubscribe
from app.testimonials.removal import testimonial_of_request, withdraw

bp = Blueprint("public", __name__, template_folder="templates")
log = logging.getLogger("app.public")


def request_or_404(token):
    req = find_by_token(token) if len(token) <= 64 else None
    if req is None:
        abort(404, description="This link is not valid. Please check that you copied the whole address.")
    return req


@bp.get("/r/<token>")
def testimonial_page(token):
    req = request_or_404(token)
    if req.status in (EXPIRED, CANCELLED):
        return render_template("public/closed.html", req=req), 410
    # HEAD is a link checker or a mail scanner probing the address, not the customer.
    if req.status != SUBMITTED and request.method != "HEAD":
        record_click(req, now())
        db.session.commit()
    return render_template("public/record.html", req=req, errors=[], max_mb=current_app.config["VIDEO_MAX_MB"])


@bp.post("/r/<token>")
@csrf.exempt  # checked below: the global check would parse the upload before the size limit is set
def submit(token):
    req = request_or_404(token)
    if req.status in (EXPIRED, CANCELLED):
        return render_template("public/closed.html", req=req), 410
    max_mb = current_app.config["VIDEO_MAX_MB"]

    def too_large():
        return render_template("public/record.html", req=req, max_mb=max_mb,
                               errors=[f"The video is larger than {max_mb} MB."]), 413

    request.max_content_length = max_mb * 1024 * 1024 + 64 * 1024  # the video and the form fields
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        return too_large()
    text, consent = form.get("text", ""), form.get("consent") == "yes"

    def refused(message, status=400, already=False):
        # The form comes back as the customer filled it in: a refusal never costs them
        # their words (a browser cannot refill the file field, so the message says so).
        return render_template("public/record.html", req=req, max_mb=max_mb, errors=[message],
                               already=already, text=text, consent=consent), status

    try:
        csrf.protect()
    except CSRFError:
        # The session cookie expired or was lost (a mobile browser that dropped the tab
        # while the camera was open): a page with a fresh form, not a bare "Bad Request".
        log.info("testimonial form for request %s refused: form token missing or expired", req.id)
        return refused("This page had expired, so nothing was sent. Please send your "
                       "testimonial again" + (" and choose your video once more." if files.get("video") else "."))
    if files.get("video") and file_size(files["video"]) > max_mb * 1024 * 1024:
        return too_large()
    try:
        submit_testimonial(req, text=text, consent=consent, video=files.get("video"), now=now())
    except SubmissionRefused as exc:
        db.session.rollback()
        message = str(exc)
        if files.get("video") and files["video"].filename and not exc.already:
            message += " Please choose your video again."
        return refused(message, 409 if exc.already else 400, exc.already)
    db.session.commit()
    return render_template("public/thanks.html", req=req)


def file_size(upload):
    upload.stream.seek(0, os.SEEK_END)
    size = upload.stream.tell()
    upload.stream.seek(0)
    return size


@bp.route("/u/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058 one-click: mail clients POST without a form token
def unsubscribe_page(token):
    req = request_or_404(token)
    if request.method == "GET":
        return render_template("public/unsubscribe.html", req=req, done=False)
    unsubscribe(req, now(), source="link")
    db.session.commit()
    return render_template("public/unsubscribe.html", req=req, done=True)


@bp.post("/r/<token>/withdraw")
def withdraw_testimonial(token):
    """After submitting, the customer may take the testimonial back (app.testimonials.removal)."""
    req = request_or_404(token)
    testimonial = testimonial_of_request(req.id)
    if testimonial is None or testimonial.status in ("withdrawn", "erased"):
        return render_template("public/withdrawn.html", req=req, done=testimonial is not None), 404 if testimonial is None else 200
    if request.form.get("confirm") != "yes":
        return render_template("public/withdrawn.html", req=req, testimonial=testimonial, ask=True,
                               error="Tick the box to confirm that the testimonial should be removed."), 400
    withdraw(testimonial, now())
    db.session.commit()
    return render_template("public/withdrawn.html", req=req, done=True)
