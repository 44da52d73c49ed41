"""The customer's pages: their personal link ``/r/<token>`` (record or choose a video,
write, rate, consent, send), its resumable uploads (tus, app/testimonials/uploads.py), "not
arrived yet?" ``/r/<token>/postpone`` and unsubscribe ``/u/<token>``."""

import logging
import os

import segno
from flask import Blueprint, current_app, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from app.clock import now
from app.extensions import csrf, db
from app.lifecycle.services import find_by_token, link_for, record_click
from app.lifecycle.states import CANCELLED, EXPIRED, SUBMITTED
from app.optouts.services import unsubscribe
from app.public.services import (
    PostponeRefused,
    SubmissionRefused,
    consent_wording,
    default_display_name,
    postpone,
    postpone_days,
    submit_testimonial,
)
from app.security import blueprint_security
from app.testimonials.removal import testimonial_of_request, withdraw

bp = Blueprint("public", __name__, template_folder="templates")
log = logging.getLogger("app.public")

# The customer's pages through app.security: the recorder needs the camera and microphone,
# plays the recording back from a blob: URL and shows the QR code as a data: image (the
# product picture comes from the shop's own site, https:, as everywhere). No inline style
# either: the pages' CSS is a file.
blueprint_security(
    bp,
    csp={"img_src": "'self' data: blob: https:", "media_src": "'self' blob:", "style_src": "'self'"},
    permissions={"camera": "(self)", "microphone": "(self)"},
)


class LinkProblem(Exception):
    def __init__(self, response):
        self.response = response


@bp.errorhandler(LinkProblem)
def link_problem(exc):
    return exc.response


@bp.after_request
def no_referrer(response):
    # The link's token is in the address: no page of ours ever sends it on, not even to us.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def request_or_404(token):
    req = find_by_token(token) if len(token) <= 64 else None
    if req is None:
        raise LinkProblem((render_template("public/unknown.html"), 404))
    return req


def open_request(token):
    """The request behind a link that still takes a testimonial (else its clear page)."""
    req = request_or_404(token)
    if req.status in (EXPIRED, CANCELLED):
        raise LinkProblem((render_template("public/closed.html", req=req), 410))
    return req


def qr_code_data_uri(url):
    """The link as a QR code (an SVG data: URL), for switching from a computer to a phone."""
    return segno.make(url, error="m").svg_data_uri(scale=4, border=2, dark="#1f2330")


def page(req, *, errors=(), status=200, **form):
    link = link_for(req)
    campaign = req.campaign
    context = dict(
        req=req,
        errors=list(errors),
        max_mb=current_app.config["VIDEO_MAX_MB"],
        max_seconds=current_app.config["VIDEO_MAX_SECONDS"],
        link=link,
        qr_code=qr_code_data_uri(link),
        heading=(campaign.prompt_heading if campaign else None) or None,
        questions=(campaign.prompt_questions if campaign else None) or [],
        consent_text=consent_wording(req),
        postpone_days=postpone_days(),
        upload_endpoint=url_for("public.create_upload", token=req.token),
        default_name=default_display_name(req),
        form=form,
    )
    return render_template("public/record.html", **context), status


@bp.get("/r/<token>")
def testimonial_page(token):
    req = open_request(token)
    # HEAD is a link checker or a mail scanner probing the address, not the customer.
    if req.status != SUBMITTED and request.method != "HEAD":
        record_click(req, now())
        db.session.commit()
    return page(req)


@bp.post("/r/<token>")
@csrf.exempt  # checked below: the global check would parse the upload before the size limit is set
def submit(token):
    req = open_request(token)
    max_mb = current_app.config["VIDEO_MAX_MB"]
    request.max_content_length = max_mb * 1024 * 1024 + 64 * 1024  # the video and the form fields
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        return page(req, errors=[f"The video is larger than {max_mb} MB."], status=413)
    fields = {name: form.get(name, "") for name in ("text", "rating", "display_name", "upload_id")}
    fields["consent"] = form.get("consent") == "yes"

    def refused(message, status=400, already=False):
        # The form comes back as the customer filled it in: a refusal never costs them
        # their words (a browser cannot refill the file field, so the message says so).
        return page(req, errors=[message], status=status, already=already, **fields)

    try:
        csrf.protect()
    except CSRFError:
        # The session cookie expired or was lost (a mobile browser that dropped the tab
        # while the camera was open): a page with a fresh form, not a bare "Bad Request".
        log.info("testimonial form for request %s refused: form token missing or expired", req.id)
        return refused(
            "This page had expired, so nothing was sent. Please send your "
            "testimonial again" + (" and choose your video once more." if files.get("video") else ".")
        )
    video = files.get("video")
    if video and file_size(video) > max_mb * 1024 * 1024:
        return page(req, errors=[f"The video is larger than {max_mb} MB."], status=413)
    try:
        submit_testimonial(
            req,
            text=fields["text"],
            consent=fields["consent"],
            video=video,
            upload_id=fields["upload_id"] or None,
            rating=fields["rating"],
            display_name=fields["display_name"],
            ip=request.remote_addr,
            now=now(),
        )
    except SubmissionRefused as exc:
        db.session.rollback()
        message = str(exc)
        if video and video.filename and not exc.already:
            message += " Please choose your video again."
        return refused(message, 409 if exc.already else 400, exc.already)
    db.session.commit()
    return render_template(
        "public/thanks.html", req=req, thank_you_text=req.campaign.thank_you_text if req.campaign else None
    )


def file_size(upload):
    upload.stream.seek(0, os.SEEK_END)
    size = upload.stream.tell()
    upload.stream.seek(0)
    return size


@bp.route("/r/<token>/postpone", methods=["GET", "POST"])
def postpone_page(token):
    """GET asks (a mail scanner opening the link changes nothing); POST moves the reminder."""
    req = open_request(token)
    days = postpone_days()
    if req.status == SUBMITTED:
        return render_template("public/postpone.html", req=req, days=days, state="submitted"), 409
    if request.method == "GET":
        state = "already" if req.postponed_at is not None else "ask"
        return render_template("public/postpone.html", req=req, days=days, state=state)
    try:
        postpone(req, now())
    except PostponeRefused as exc:
        db.session.rollback()
        return render_template("public/postpone.html", req=req, days=days, state="refused", message=str(exc)), 409
    db.session.commit()
    return render_template("public/postpone.html", req=req, days=days, state="done")


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
        return render_template(
            "public/withdrawn.html", req=req, done=testimonial is not None
        ), 404 if testimonial is None else 200
    if request.form.get("confirm") != "yes":
        return render_template(
            "public/withdrawn.html",
            req=req,
            testimonial=testimonial,
            ask=True,
            error="Tick the box to confirm that the testimonial should be removed.",
        ), 400
    withdraw(testimonial, now())
    db.session.commit()
    return render_template("public/withdrawn.html", req=req, done=True)


from app.public import upload_views  # noqa: E402, F401  (the tus routes on this blueprint)
