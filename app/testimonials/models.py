"""What a customer submitted through their link, and the resumable uploads behind its video.

A testimonial's video goes through ``video_status``:

    none        no video (a written testimonial)
    pending     stored, waiting for the processing job (app.testimonials.processing)
    processing  a job has claimed it (``video_claimed_at`` is its lease)
    ready       probed; ``playable_key`` plays in every browser, ``poster_key`` is its picture
    failed      not a video we can decode, or every attempt failed (``video_error`` says why)

The original file is always kept (``video_key``); ``playable_key`` equals it when the
original already plays everywhere (an H.264/AAC MP4 with its index first).
"""

import secrets

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import isoformat, utcnow
from app.dbtypes import JSONList, UTCDateTime
from app.extensions import db

VIDEO_STATUSES = ("none", "pending", "processing", "ready", "failed")
POSTER_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def poster_content_type(key):
    """The content type of a poster picture, from its key's extension."""
    return POSTER_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def new_public_id():
    return secrets.token_urlsafe(16)


class Testimonial(db.Model):
    """What the customer submitted through their link."""

    __tablename__ = "testimonials"
    __test__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("testimonial_requests.id"), unique=True)
    text: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column()  # 1–5 stars, optional
    display_name: Mapped[str | None] = mapped_column(String(120))  # how the customer wants to be named
    consent: Mapped[bool] = mapped_column(default=False)
    # The exact sentence the customer agreed to, when, and from which address.
    consent_text: Mapped[str | None] = mapped_column(Text)
    consent_at = mapped_column(UTCDateTime)
    consent_ip: Mapped[str | None] = mapped_column(String(45))
    # pending | approved | rejected | withdrawn | erased; changes go through
    # app.testimonials.moderation (the transition table and its conditional UPDATE).
    status: Mapped[str] = mapped_column(String(10), default="pending")
    featured: Mapped[bool] = mapped_column(default=False)
    # The unguessable id in the share page's and the public media URLs (never the row id).
    public_id: Mapped[str] = mapped_column(String(32), default=new_public_id)
    moderated_at = mapped_column(UTCDateTime)
    withdrawn_at = mapped_column(UTCDateTime)  # the customer took it back
    erased_at = mapped_column(UTCDateTime)  # the customer's contact was erased

    # The original as uploaded (a storage key, our name, never the customer's).
    video_key: Mapped[str | None] = mapped_column(String(255))
    video_content_type: Mapped[str | None] = mapped_column(String(80))
    video_size: Mapped[int | None] = mapped_column()
    video_status: Mapped[str] = mapped_column(String(10), default="none", nullable=False)
    video_error: Mapped[str | None] = mapped_column(Text)
    video_attempts: Mapped[int] = mapped_column(default=0, nullable=False)
    video_next_attempt_at = mapped_column(UTCDateTime)  # when the job may (re)try; None: not due
    video_claimed_at = mapped_column(UTCDateTime)
    video_processed_at = mapped_column(UTCDateTime)
    # What the processing job found and made.
    playable_key: Mapped[str | None] = mapped_column(String(255))
    playable_content_type: Mapped[str | None] = mapped_column(String(80))
    poster_key: Mapped[str | None] = mapped_column(String(255))
    video_duration_seconds: Mapped[float | None] = mapped_column(Float)
    video_width: Mapped[int | None] = mapped_column()
    video_height: Mapped[int | None] = mapped_column()
    video_rotation: Mapped[int | None] = mapped_column()  # degrees the player turns the picture
    video_codec: Mapped[str | None] = mapped_column(String(40))
    audio_codec: Mapped[str | None] = mapped_column(String(40))

    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    request = relationship("TestimonialRequest")

    __table_args__ = (
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="ck_testimonial_rating"),
        CheckConstraint(
            "video_status IN ('none', 'pending', 'processing', 'ready', 'failed')", name="ck_testimonial_video_status"
        ),
        Index("ix_testimonials_video_due", "video_status", "video_next_attempt_at"),
        Index("ix_testimonials_public_id", "public_id", unique=True),
        Index("ix_testimonials_status_created", "status", "created_at"),
    )

    @property
    def has_video(self):
        return self.video_key is not None

    @property
    def video_filename(self):
        """The original's file name in storage (older code and templates call it that)."""
        return self.video_key.rsplit("/", 1)[-1] if self.video_key else None

    def to_dict(self):
        return {
            "id": self.id,
            "request_id": self.request_id,
            "status": self.status,
            "featured": self.featured,
            "public_id": self.public_id,
            "moderated_at": isoformat(self.moderated_at),
            "withdrawn_at": isoformat(self.withdrawn_at),
            "rating": self.rating,
            "display_name": self.display_name,
            "text": self.text,
            "has_video": self.has_video,
            "video_status": self.video_status,
            "video_error": self.video_error,
            "video_attempts": self.video_attempts,
            "video_duration_seconds": self.video_duration_seconds,
            "video_content_type": self.video_content_type,
            "video_size": self.video_size,
            "video_width": self.video_width,
            "video_height": self.video_height,
            "video_rotation": self.video_rotation,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "playable_content_type": self.playable_content_type,
            "has_poster": self.poster_key is not None,
            "consent_text": self.consent_text,
            "consent_at": isoformat(self.consent_at),
            "created_at": isoformat(self.created_at),
        }


class VideoUpload(db.Model):
    """One resumable (tus) upload from a customer's page; at most one per request is kept.

    The bytes live in storage under ``storage_key`` as parts, one per PATCH (see
    app.testimonials.uploads); ``offset`` is how many bytes have arrived. Unfinished uploads are
    deleted a day after their last byte (``UPLOAD_EXPIRY_HOURS``).
    """

    __tablename__ = "video_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, in the upload's URL
    request_id: Mapped[int] = mapped_column(ForeignKey("testimonial_requests.id"), index=True)
    length: Mapped[int] = mapped_column()
    offset: Mapped[int] = mapped_column(default=0)
    # The accepted parts' names, in order (each PATCH stores one; see app.testimonials.uploads).
    parts = mapped_column(JSONList, default=list, nullable=False)
    content_type: Mapped[str | None] = mapped_column(String(80))  # what the browser said it recorded
    filename: Mapped[str | None] = mapped_column(String(255))  # the customer's name for it, shown back only
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    completed_at = mapped_column(UTCDateTime)
    # Set when a submission took this upload: it is the testimonial's video now.
    testimonial_id: Mapped[int | None] = mapped_column(ForeignKey("testimonials.id"))

    __table_args__ = (Index("ix_video_uploads_updated", "updated_at"),)

    @property
    def complete(self):
        return self.offset == self.length
