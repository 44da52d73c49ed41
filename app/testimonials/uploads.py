"""Resumable video uploads from the customer's page: the tus 1.0.0 protocol (core,
creation and termination), small enough to implement here.

    POST   /r/<token>/uploads        Upload-Length → 201, Location: /r/<token>/uploads/<id>
    HEAD   /r/<token>/uploads/<id>   → Upload-Offset, Upload-Length
    PATCH  /r/<token>/uploads/<id>   Upload-Offset + application/offset+octet-stream body → 204
    DELETE /r/<token>/uploads/<id>   → 204

Each PATCH body is stored as one part (``uploads/<id>/<offset>-<random>``) and the upload's
row moves its offset with a conditional UPDATE (``WHERE offset = :expected``), so two
racing PATCHes at the same offset cannot both count: the loser gets 409 and its part is
deleted. A body cut short by a dropped connection keeps the bytes that arrived; the client
asks HEAD for the offset and goes on from there. When the last byte arrives the parts are
joined into one file under ``videos/`` and deleted.

One upload per request is kept: creating one deletes the request's other uploads that no
submission took. Unfinished or unsubmitted uploads are deleted ``UPLOAD_EXPIRY_HOURS``
after their last byte.

Service functions flush and never commit (the views commit).
"""

import base64
import binascii
import logging
import secrets
import tempfile
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from werkzeug.exceptions import ClientDisconnected

from app.extensions import db
from app.storage import get_storage
from app.testimonials.models import VideoUpload
from app.testimonials.video import sniff_container

log = logging.getLogger("app.public")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
READ_CHUNK = 256 * 1024
EXTENSIONS = {"mp4": "mp4", "mov": "mov", "webm": "webm"}


class UploadRefused(ValueError):
    """A tus request we cannot accept: ``status`` is the HTTP answer, the message says why."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def max_bytes():
    return current_app.config["VIDEO_MAX_MB"] * 1024 * 1024


def parse_length(value, name):
    if value is None or not value.isdigit() or len(value) > 15:
        raise UploadRefused(f"{name} must be a whole number of bytes")
    return int(value)


def parse_metadata(header):
    """``Upload-Metadata: filename ZmlsZS5tcDQ=,filetype dmlkZW8vbXA0`` → dict of str."""
    metadata = {}
    if not header:
        return metadata
    if len(header) > 4096:
        raise UploadRefused("Upload-Metadata is too long")
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise UploadRefused("Upload-Metadata must be comma-separated 'key base64value' pairs")
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise UploadRefused(f"Upload-Metadata value of {parts[0]!r} is not base64 of UTF-8 text") from None
        metadata[parts[0]] = value
    return metadata


def clean_text(value, limit):
    value = "".join(ch for ch in (value or "") if ch.isprintable())[:limit]
    return value or None


def create_upload(req, *, length, metadata, now):
    if length == 0:
        raise UploadRefused("The video is empty (0 bytes).")
    if length > max_bytes():
        raise UploadRefused(f"The video is larger than {current_app.config['VIDEO_MAX_MB']} MB.", 413)
    content_type = clean_text(metadata.get("filetype"), 80)
    if content_type and not content_type.split(";")[0].strip().startswith("video/"):
        raise UploadRefused("The file must be a video (MP4, WebM or QuickTime).", 415)
    # One upload in progress per request: a new recording replaces the one before.
    for old in db.session.scalars(
        select(VideoUpload).where(VideoUpload.request_id == req.id, VideoUpload.testimonial_id.is_(None))
    ):
        delete_upload(old)
    upload_id = secrets.token_hex(16)
    upload = VideoUpload(
        id=upload_id,
        request_id=req.id,
        length=length,
        offset=0,
        parts=[],
        content_type=content_type,
        filename=clean_text(metadata.get("filename"), 255),
        storage_key=f"uploads/{upload_id}",
        created_at=now,
        updated_at=now,
    )
    db.session.add(upload)
    db.session.flush()
    log.info("request=%s upload %s created: %s bytes (%s)", req.id, upload_id, length, content_type)
    return upload


def find_upload(req, upload_id, now):
    """The request's upload by id, or None (unknown, another request's, or expired)."""
    if not isinstance(upload_id, str) or len(upload_id) != 32:
        return None
    upload = db.session.get(VideoUpload, upload_id)
    if upload is None or upload.request_id != req.id:
        return None
    if upload.testimonial_id is None and upload.updated_at < now - expiry():
        return None
    return upload


def expiry():
    return timedelta(hours=current_app.config["UPLOAD_EXPIRY_HOURS"])


def read_body(stream, limit):
    """The body into a temporary file, at most ``limit`` bytes (one more means too big).

    Returns (file, size, cut_short): a dropped connection keeps what arrived."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    size, cut_short = 0, False
    try:
        while size <= limit:
            chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
            if not chunk:
                break
            spool.write(chunk)
            size += len(chunk)
    except (ClientDisconnected, OSError):
        cut_short = True
    spool.seek(0)
    return spool, size, cut_short


def append_chunk(upload, *, offset, stream, now):
    """Store one PATCH body at ``offset``; returns the new offset."""
    if offset != upload.offset:
        raise UploadRefused(f"Upload-Offset {offset} does not match the upload's offset {upload.offset}", 409)
    if upload.complete:
        raise UploadRefused("The upload is already complete", 409)
    remaining = upload.length - upload.offset
    body, size, cut_short = read_body(stream, remaining)
    with body:
        if size > remaining:
            raise UploadRefused("The body goes past the upload's length", 413)
        if size == 0:
            return upload.offset
        storage = get_storage()
        part = f"{offset:012d}-{secrets.token_hex(4)}"
        storage.save(f"{upload.storage_key}/{part}", body)
    new_offset = offset + size
    won = (
        db.session.execute(
            update(VideoUpload)
            .where(VideoUpload.id == upload.id, VideoUpload.offset == offset)
            .values(offset=new_offset, parts=[*upload.parts, part], updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    if not won:
        storage.delete(f"{upload.storage_key}/{part}")
        raise UploadRefused("Another request moved this upload's offset first", 409)
    db.session.refresh(upload)
    if cut_short:
        log.info("upload %s: connection dropped, kept %s bytes (offset %s)", upload.id, size, new_offset)
    if upload.complete:
        assemble(upload, now)
    return new_offset


class PartsReader:
    """Reads the parts one after the other as one stream (for joining them)."""

    def __init__(self, storage, keys):
        self.storage, self.keys, self.current = storage, list(keys), None

    def read(self, size=-1):
        while True:
            if self.current is None:
                if not self.keys:
                    return b""
                self.current = self.storage.open(self.keys.pop(0))
            data = self.current.read(size if size and size > 0 else 1024 * 1024)
            if data:
                return data
            self.current.close()
            self.current = None


def assemble(upload, now):
    """Join the parts into ``videos/<id>.<container>`` and drop the parts."""
    storage = get_storage()
    parts = [f"{upload.storage_key}/{part}" for part in upload.parts]
    head = storage.read_range(parts[0], 0, 16)
    extension = EXTENSIONS.get(sniff_container(head), "bin")
    key = f"videos/{upload.id}.{extension}"
    size = storage.save(key, PartsReader(storage, parts), upload.content_type)
    if size != upload.length:
        storage.delete(key)
        raise RuntimeError(f"upload {upload.id}: joined {size} bytes, expected {upload.length}")
    for part in parts:
        storage.delete(part)
    upload.storage_key, upload.parts, upload.completed_at = key, [], now
    db.session.flush()
    log.info("upload %s complete: %s (%s bytes)", upload.id, key, size)


def delete_upload(upload):
    storage = get_storage()
    if upload.completed_at is not None:
        storage.delete(upload.storage_key)
    # Every part, also one a PATCH stored just before its process died (never counted).
    storage.delete_prefix(f"uploads/{upload.id}/")
    db.session.delete(upload)
    db.session.flush()


def delete_expired_uploads(now):
    """Uploads no submission took, a day (UPLOAD_EXPIRY_HOURS) after their last byte."""
    old = db.session.scalars(
        select(VideoUpload).where(VideoUpload.testimonial_id.is_(None), VideoUpload.updated_at < now - expiry())
    ).all()
    for upload in old:
        delete_upload(upload)
    if old:
        log.info("deleted %s unfinished uploads older than %s", len(old), expiry())
    return len(old)
