"""The tus 1.0.0 endpoints of the customer's page (the protocol: app/testimonials/uploads.py).

Every answer carries ``Tus-Resumable: 1.0.0`` and a short plain-text reason when it
refuses. No CSRF token: the link's token and the upload's random id are the capability,
and a tus client cannot send a form token.
"""

from flask import current_app, make_response, request, url_for

from app.clock import now
from app.extensions import csrf, db
from app.lifecycle.services import find_by_token
from app.lifecycle.states import OPEN_FOR_SUBMISSION, SUBMITTED
from app.public.views import bp
from app.testimonials import uploads


def tus_response(status, body="", **headers):
    response = make_response(body, status)
    response.headers["Tus-Resumable"] = uploads.TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    response.mimetype = "text/plain"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = str(value)
    return response


class TusRefused(Exception):
    def __init__(self, status, message, **headers):
        super().__init__(message)
        self.status, self.headers = status, headers


@bp.errorhandler(TusRefused)
def tus_refused(exc):
    return tus_response(exc.status, str(exc) + "\n", **exc.headers)


def tus_request(token):
    """The request behind the link, when it still takes a video, and a tus 1.0.0 client."""
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != uploads.TUS_VERSION:
        raise TusRefused(
            412, "This server speaks tus 1.0.0 (send Tus-Resumable: 1.0.0)", Tus_Version=uploads.TUS_VERSION
        )
    req = find_by_token(token) if len(token) <= 64 else None
    if req is None:
        raise TusRefused(404, "This link is not valid")
    if req.status == SUBMITTED:
        raise TusRefused(409, "A testimonial was already sent with this link")
    if req.status not in OPEN_FOR_SUBMISSION:
        raise TusRefused(410, "This link is no longer active")
    return req


def capabilities():
    return {
        "Tus_Version": uploads.TUS_VERSION,
        "Tus_Extension": uploads.TUS_EXTENSIONS,
        "Tus_Max_Size": uploads.max_bytes(),
    }


@bp.route("/r/<token>/uploads", methods=["POST", "OPTIONS"], endpoint="create_upload")
@csrf.exempt
def create_upload(token):
    if request.method == "OPTIONS":
        return tus_response(204, **capabilities())
    req = tus_request(token)
    if request.headers.get("Upload-Defer-Length"):
        raise TusRefused(400, "Upload-Defer-Length is not supported; send Upload-Length")
    try:
        length = uploads.parse_length(request.headers.get("Upload-Length"), "Upload-Length")
        metadata = uploads.parse_metadata(request.headers.get("Upload-Metadata"))
        upload = uploads.create_upload(req, length=length, metadata=metadata, now=now())
    except uploads.UploadRefused as exc:
        db.session.rollback()
        raise TusRefused(exc.status, str(exc), **capabilities()) from None
    db.session.commit()
    location = url_for("public.upload", token=token, upload_id=upload.id)
    return tus_response(201, Location=location, Upload_Offset=0)


@bp.route("/r/<token>/uploads/<upload_id>", methods=["HEAD", "PATCH", "DELETE", "OPTIONS"], endpoint="upload")
@csrf.exempt
def upload_resource(token, upload_id):
    if request.method == "OPTIONS":
        return tus_response(204, **capabilities())
    req = tus_request(token)
    upload = uploads.find_upload(req, upload_id, now())
    if upload is None or upload.testimonial_id is not None:
        raise TusRefused(404, "No such upload (it may have expired); start a new one")
    if request.method == "HEAD":
        return tus_response(200, Upload_Offset=upload.offset, Upload_Length=upload.length)
    if request.method == "DELETE":
        uploads.delete_upload(upload)
        db.session.commit()
        return tus_response(204)
    return patch(upload)


def patch(upload):
    if request.mimetype != "application/offset+octet-stream":
        raise TusRefused(415, "PATCH needs Content-Type: application/offset+octet-stream")
    try:
        offset = uploads.parse_length(request.headers.get("Upload-Offset"), "Upload-Offset")
        new_offset = uploads.append_chunk(upload, offset=offset, stream=request.stream, now=now())
    except uploads.UploadRefused as exc:
        db.session.rollback()
        headers = {"Upload_Offset": upload.offset} if exc.status == 409 else {}
        raise TusRefused(exc.status, str(exc), **headers) from None
    db.session.commit()
    current_app.logger.debug("upload %s at %s of %s", upload.id, new_offset, upload.length)
    return tus_response(204, Upload_Offset=new_offset)
