"""What the customer can do through their link: submit a testimonial, unsubscribe."""

import logging
import uuid

from sqlalchemy import select

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import cancel_request, record_submission
from app.lifecycle.states import CANCELLABLE, SUBMITTED
from app.optouts.models import OptOut, normalise_contact
from app.storage import get_storage
from app.testimonials.models import Testimonial
from app.testimonials.moderation import initial_status

log = logging.getLogger("app.public")

VIDEO_TYPES = {"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov"}
MAX_TEXT = 5000


class SubmissionRefused(ValueError):
    def __init__(self, message, already=False):
        super().__init__(message)
        self.already = already


def sniff_video(head):
    """The container a file really is, from its first bytes (never trust the name)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return "mov" if brand == b"qt  " else "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "mov"
    return None


def submit_testimonial(req, *, text, consent, video, now):
    if req.status == SUBMITTED:
        raise SubmissionRefused("We already received your testimonial — thank you!", already=True)
    text = (text or "").strip()
    has_video = video is not None and video.filename
    if not text and not has_video:
        raise SubmissionRefused("Please record or choose a video, or write a few words.")
    if len(text) > MAX_TEXT:
        raise SubmissionRefused(f"Please keep the text under {MAX_TEXT} characters.")
    if "\x00" in text:  # no browser sends one; PostgreSQL could not store it
        raise SubmissionRefused("The text contains an invisible control character (NUL); please retype it.")
    if not consent:
        raise SubmissionRefused("Please tick the box to let us share your testimonial.")
    testimonial = Testimonial(request_id=req.id, text=text or None, consent=True, created_at=now)
    stored_key = None
    if has_video:
        head = video.stream.read(16)
        video.stream.seek(0)
        kind = sniff_video(head)
        if video.mimetype not in VIDEO_TYPES or kind is None:
            raise SubmissionRefused("The file must be an MP4, WebM or QuickTime (.mov) video.")
        storage = get_storage()
        stored_key = f"videos/{uuid.uuid4().hex}.{kind}"  # our name, never the customer's
        testimonial.video_size = storage.save(stored_key, video.stream, video.mimetype)
        testimonial.video_key = stored_key
        testimonial.video_content_type = video.mimetype
        testimonial.video_status = "pending"
    if not record_submission(req, now):
        if stored_key:
            get_storage().delete(stored_key)
        raise SubmissionRefused("We already received your testimonial — thank you!", already=True)
    # The campaign may approve high ratings on arrival (app.testimonials.moderation).
    testimonial.status = initial_status(req.campaign.auto_approve_min_rating, testimonial.rating)
    db.session.add(testimonial)
    db.session.flush()
    return testimonial


def opt_out(channel, contact, now, *, source, detail=None):
    """Add a contact to the suppression list and cancel its pending requests."""
    contact = normalise_contact(channel, contact)
    exists = db.session.scalar(select(OptOut).where(OptOut.channel == channel, OptOut.contact == contact))
    if exists is None:
        db.session.add(OptOut(channel=channel, contact=contact, source=source, detail=detail, created_at=now))
        db.session.flush()
        log.info("opt-out %s %s (%s)", channel, contact, source)
    column = TestimonialRequest.customer_email if channel == "email" else TestimonialRequest.customer_phone
    pending = db.session.scalars(
        select(TestimonialRequest).where(column == contact, TestimonialRequest.status.in_(CANCELLABLE))
    ).all()
    for req in pending:
        other = "sms" if channel == "email" else "email"
        if req.channel == "both":
            # Still reachable on the other channel unless that one opted out too.
            other_contact = req.customer_phone if other == "sms" else req.customer_email
            if not db.session.scalar(select(OptOut.id).where(OptOut.channel == other,
                                                             OptOut.contact == normalise_contact(other, other_contact))):
                continue
        cancel_request(req, now, f"customer opted out ({channel}, {source})")
    return exists is None


def unsubscribe(req, now, *, source):
    for channel in req.channels:
        contact = req.customer_email if channel == "email" else req.customer_phone
        if contact:
            opt_out(channel, contact, now, source=source, detail=f"request {req.id}")


