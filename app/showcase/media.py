"""Serving a public testimonial's video and poster through the storage interface (local
folder: range requests answered here; S3: a redirect to a short-lived presigned URL).
The caller has checked that the testimonial is public."""

from flask import abort

from app.storage import StorageError, get_storage
from app.testimonials.models import poster_content_type


def public_video(testimonial):
    """(key, content type) of the version to show: the one that plays everywhere when the
    processing job made it, else the original."""
    if testimonial.playable_key and testimonial.video_status == "ready":
        return testimonial.playable_key, testimonial.playable_content_type or "video/mp4"
    return testimonial.video_key, testimonial.video_content_type or "application/octet-stream"


def media_response(testimonial, kind):
    if kind == "video":
        key, content_type = public_video(testimonial)
    else:
        key, content_type = testimonial.poster_key, poster_content_type(testimonial.poster_key or "")
    if not key:
        abort(404, description="This testimonial has no such file.")
    try:
        return get_storage().response(key, content_type=content_type)
    except StorageError:
        abort(404, description="This testimonial's file is missing from the storage.")
