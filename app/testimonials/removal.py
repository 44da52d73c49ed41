"""Taking a testimonial down for good: the customer withdraws it, or their contact is
erased. Its stored files go from every storage this app writes to (the configured one and,
when that is S3, the local folder the app used before), and so do unfinished uploads."""

import logging

from flask import current_app
from sqlalchemy import delete, select

from app.extensions import db
from app.storage import StorageError, get_storage
from app.storage.local import LocalStorage
from app.testimonials.models import Testimonial, VideoUpload
from app.testimonials.moderation import WITHDRAWN, move

log = logging.getLogger("app.testimonials")


def storages():
    """The configured storage, plus the local upload folder when the configured one is not it."""
    configured = get_storage()
    found = [configured]
    if not isinstance(configured, LocalStorage):
        found.append(LocalStorage(current_app.config["UPLOAD_DIR"]))
    return found


def stored_keys(testimonial):
    return sorted({k for k in (testimonial.video_key, testimonial.playable_key, testimonial.poster_key) if k})


def delete_files(keys, upload_keys=()):
    """Delete blobs (and upload part prefixes) everywhere; returns how many keys were asked."""
    for storage in storages():
        for key in keys:
            try:
                storage.delete(key)
            except StorageError:
                log.warning("could not delete %s from %s storage", key, storage.name, exc_info=True)
        for prefix in upload_keys:
            try:
                storage.delete_prefix(prefix.rstrip("/") + "/")
                storage.delete(prefix)
            except StorageError:
                log.warning("could not delete upload %s from %s storage", prefix, storage.name, exc_info=True)
    return len(keys)


def uploads_of(request_ids):
    return db.session.scalars(select(VideoUpload).where(VideoUpload.request_id.in_(request_ids))).all()


def forget_media(testimonial):
    """Clear the testimonial's file references and delete the files and its request's
    uploads. Returns the number of files deleted. Flushes."""
    keys = stored_keys(testimonial)
    uploads = uploads_of([testimonial.request_id])
    upload_keys = [u.storage_key for u in uploads]
    if uploads:
        db.session.execute(delete(VideoUpload).where(VideoUpload.id.in_([u.id for u in uploads])))
    testimonial.video_key = testimonial.playable_key = testimonial.poster_key = None
    testimonial.video_status = "none"  # nothing left for the video job
    db.session.flush()
    delete_files(keys, upload_keys)
    return len(keys)


def withdraw(testimonial, now):
    """The customer takes their testimonial back: unpublished at once, files deleted, the
    words and name cleared; the consent record and the time of withdrawal stay. Returns
    False when it was already withdrawn (or erased)."""
    if not move([testimonial.id], WITHDRAWN, now, withdrawn_at=now):
        return False
    db.session.refresh(testimonial)
    testimonial.text = None
    testimonial.display_name = None
    testimonial.rating = None
    files = forget_media(testimonial)
    log.info("testimonial=%s withdrawn by the customer (%s files deleted)", testimonial.id, files)
    return True


def testimonial_of_request(request_id):
    return db.session.scalar(select(Testimonial).where(Testimonial.request_id == request_id))
