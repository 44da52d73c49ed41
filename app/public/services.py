"""What the customer can do through their link: submit a testimonial, postpone the next
reminder ("not arrived yet"). Unsubscribing is the suppression list's
(``app.optouts.services.unsubscribe``). Flushes, never commits."""

import logging
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import record_submission
from app.lifecycle.states import CLICKED, SCHEDULED, SENT, SUBMITTED, add_event
from app.settings import current_settings
from app.settings.dates import month_day
from app.storage import get_storage
from app.testimonials import uploads
from app.testimonials.models import Testimonial
from app.testimonials.moderation import initial_status
from app.testimonials.video import sniff_container

log = logging.getLogger("app.public")

VIDEO_TYPES = {"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov"}
CONTAINER_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime"}
MAX_TEXT = 5000
MAX_DISPLAY_NAME = 60
NOT_A_VIDEO = "The file must be an MP4, WebM or QuickTime (.mov) video."
ALREADY = "We already received your testimonial — thank you!"


class SubmissionRefused(ValueError):
    def __init__(self, message, already=False):
        super().__init__(message)
        self.already = already


def sniff_video(head):
    """The container a file really is, from its first bytes (never trust the name)."""
    return sniff_container(head)


def default_display_name(req):
    """First name and last initial ("Ada L."), what most shops show under a testimonial."""
    first = (req.customer_first_name or "").strip()
    last = (req.customer_last_name or "").strip()
    if not first:
        return ""
    return f"{first} {last[0].upper()}." if last else first


def consent_wording(req):
    """The sentence the customer agrees to: the campaign's, else the shop's (Settings)."""
    custom = (req.campaign.consent_text or "").strip() if req.campaign else ""
    return custom or current_settings().consent


def parse_rating(value):
    if value in (None, ""):
        return None
    if not (isinstance(value, str) and value.isdigit() and 1 <= int(value) <= 5):
        raise SubmissionRefused("Please choose between 1 and 5 stars, or none.")
    return int(value)


def clean_display_name(value, req):
    name = " ".join("".join(ch for ch in (value or "") if ch.isprintable()).split())
    if len(name) > MAX_DISPLAY_NAME:
        raise SubmissionRefused(f"Please keep your name under {MAX_DISPLAY_NAME} characters.")
    return name or default_display_name(req) or None


def submit_testimonial(req, *, text, consent, video=None, upload_id=None, rating=None, display_name=None, ip=None, now):
    """Store the customer's testimonial and mark the request submitted.

    The video comes either from a finished resumable upload (``upload_id``, the page with
    JavaScript) or as a file in the form itself (``video``, the page without)."""
    if req.status == SUBMITTED:
        raise SubmissionRefused(ALREADY, already=True)
    text = (text or "").strip()
    upload = None
    if upload_id:
        upload = finished_upload(req, upload_id, now)
    has_file = upload is None and video is not None and bool(video.filename)
    if not text and upload is None and not has_file:
        raise SubmissionRefused("Please record or choose a video, or write a few words.")
    if len(text) > MAX_TEXT:
        raise SubmissionRefused(f"Please keep the text under {MAX_TEXT} characters.")
    if "\x00" in text:  # no browser sends one; PostgreSQL could not store it
        raise SubmissionRefused("The text contains an invisible control character (NUL); please retype it.")
    rating = parse_rating(rating)
    name = clean_display_name(display_name, req)
    if not consent:
        raise SubmissionRefused("Please tick the box to let us share your testimonial.")
    testimonial = Testimonial(
        request_id=req.id,
        text=text or None,
        rating=rating,
        display_name=name,
        consent=True,
        consent_text=consent_wording(req),
        consent_at=now,
        consent_ip=(ip or "")[:45] or None,
        created_at=now,
    )
    stored_key = None
    if upload is not None:
        kind = sniff_video(get_storage().read_range(upload.storage_key, 0, 16))
        if kind is None:
            raise SubmissionRefused(NOT_A_VIDEO)
        testimonial.video_key, testimonial.video_size = upload.storage_key, upload.length
        testimonial.video_content_type = CONTAINER_TYPES[kind]
    elif has_file:
        head = video.stream.read(16)
        video.stream.seek(0)
        kind = sniff_video(head)
        if video.mimetype not in VIDEO_TYPES or kind is None:
            raise SubmissionRefused(NOT_A_VIDEO)
        stored_key = f"videos/{uuid.uuid4().hex}.{kind}"  # our name, never the customer's
        testimonial.video_size = get_storage().save(stored_key, video.stream, video.mimetype)
        testimonial.video_key = stored_key
        testimonial.video_content_type = CONTAINER_TYPES[kind]
    if testimonial.video_key:
        testimonial.video_status = "pending"  # the processing job takes it from here
    if not record_submission(req, now):
        if stored_key:
            get_storage().delete(stored_key)
        raise SubmissionRefused(ALREADY, already=True)
    # The campaign may approve high ratings on arrival (app.testimonials.moderation).
    testimonial.status = initial_status(req.campaign.auto_approve_min_rating, testimonial.rating)
    db.session.add(testimonial)
    db.session.flush()
    if upload is not None:
        upload.testimonial_id = testimonial.id
        db.session.flush()
    return testimonial


def finished_upload(req, upload_id, now):
    upload = uploads.find_upload(req, upload_id, now)
    if upload is None or upload.testimonial_id is not None:
        raise SubmissionRefused(
            "We could not find your uploaded video (it may have expired). Please record or choose it again."
        )
    if not upload.complete:
        raise SubmissionRefused(
            "Your video has not finished uploading yet. Please wait until the progress "
            "bar reaches 100 %, then send again."
        )
    if upload.completed_at is None:  # the last PATCH stored its bytes but could not join them
        uploads.assemble(upload, now)
    return upload


# -- "Not arrived yet?" ------------------------------------------------------------------------

POSTPONABLE = (SCHEDULED, SENT, CLICKED)


class PostponeRefused(ValueError):
    """The request cannot be postponed (again); the message is for the customer."""


def postpone_days():
    return current_app.config["POSTPONE_DAYS"]


def postpone(req, now):
    """Move the request's next message (and its link's expiry) back by POSTPONE_DAYS, once."""
    if req.postponed_at is not None:
        raise PostponeRefused(
            f"You already moved your reminder back on {month_day(req.postponed_at)}. It can only be moved once."
        )
    if req.status not in POSTPONABLE or req.claimed_at is not None:
        raise PostponeRefused("Your reminder cannot be moved right now. Please try again in a few minutes.")
    shift = timedelta(days=postpone_days())
    next_send_at = req.next_send_at + shift if req.next_send_at else None
    expires_at = req.expires_at + shift if req.expires_at else None
    won = (
        db.session.execute(
            update(TestimonialRequest)
            .where(
                TestimonialRequest.id == req.id,
                TestimonialRequest.postponed_at.is_(None),
                TestimonialRequest.status.in_(POSTPONABLE),
                TestimonialRequest.claimed_at.is_(None),
            )
            .values(postponed_at=now, next_send_at=next_send_at, expires_at=expires_at)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    if not won:
        raise PostponeRefused("Your reminder cannot be moved right now. Please try again in a few minutes.")
    detail = f"customer: not arrived yet; next message moved back {postpone_days()} days"
    add_event(
        req.id,
        "postponed",
        now,
        detail=detail + (f" to {next_send_at:%Y-%m-%d %H:%M} UTC" if next_send_at else " (none was planned)"),
    )
    db.session.refresh(req)
    log.info("request=%s campaign=%s postponed by the customer to %s", req.id, req.campaign_id, next_send_at)
    return req
