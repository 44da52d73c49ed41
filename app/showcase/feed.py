"""The public feed's query: filters, keyset cursor, and one testimonial as JSON.

Order: featured first, then newest first (``featured DESC, created_at DESC, id DESC``).
The cursor is that triple of the last item, so a page never repeats or skips an item
when new testimonials arrive between two requests.
"""

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import url_for
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import contains_eager

from app.clock import isoformat
from app.input_guard import database_id
from app.lifecycle.models import TestimonialRequest
from app.settings.current import current_settings
from app.testimonials.models import Testimonial
from app.testimonials.moderation import RATINGS, display_name, filter_conditions, public_clause

T, R = Testimonial, TestimonialRequest
DEFAULT_LIMIT, MAX_LIMIT = 20, 100


class FeedInvalid(ValueError):
    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FeedQuery:
    product_id: str | None = None
    campaign_id: int | None = None
    min_rating: int | None = None
    has_video: bool | None = None
    limit: int = DEFAULT_LIMIT
    cursor: tuple | None = None

    @classmethod
    def from_args(cls, args, default_limit=DEFAULT_LIMIT):
        def one(name):
            values = args.getlist(name)
            if len(values) > 1:
                raise FeedInvalid(f"{name} is given {len(values)} times; give it once", name)
            return values[0].strip() if values else ""

        product = one("product_id")
        if len(product) > 64:
            raise FeedInvalid("product_id is longer than 64 characters", "product_id")
        campaign = one("campaign_id")
        try:
            campaign_id = database_id(campaign) if campaign else None
        except ValueError:
            raise FeedInvalid("campaign_id must be a campaign's number", "campaign_id") from None
        rating = one("min_rating")
        if rating and rating not in {str(r) for r in RATINGS}:
            raise FeedInvalid("min_rating must be a whole number from 1 to 5", "min_rating")
        video = one("has_video").lower()
        if video not in ("", "true", "false", "1", "0", "yes", "no"):
            raise FeedInvalid("has_video must be true or false", "has_video")
        limit_text = one("limit")
        if limit_text:
            if not limit_text.isascii() or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
                raise FeedInvalid(f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
        cursor_text = one("cursor")
        return cls(
            product_id=product or None,
            campaign_id=campaign_id,
            min_rating=int(rating) if rating else None,
            has_video=None if not video else video in ("true", "1", "yes"),
            limit=int(limit_text) if limit_text else default_limit,
            cursor=decode_cursor(cursor_text) if cursor_text else None,
        )

    def args(self):
        """The filter as query arguments (the wall's links, the widget's iframe)."""
        out = {}
        if self.product_id:
            out["product_id"] = self.product_id
        if self.campaign_id:
            out["campaign_id"] = self.campaign_id
        if self.min_rating:
            out["min_rating"] = self.min_rating
        if self.has_video is not None:
            out["has_video"] = "true" if self.has_video else "false"
        return out


def encode_cursor(testimonial):
    raw = f"{int(testimonial.featured)}|{isoformat(testimonial.created_at)}|{testimonial.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text):
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        featured, created, ident = raw.split("|")
        created_at = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if featured not in ("0", "1"):
            raise ValueError
        return featured == "1", created_at, database_id(ident)
    except (ValueError, UnicodeDecodeError, TypeError):
        raise FeedInvalid("cursor is not one this feed gave out (use the `next` value as it is)", "cursor") from None


def feed_select(query):
    """Public testimonials matching ``query``: one more than the limit (to know if there is a next page)."""
    where = [
        public_clause(),
        *filter_conditions(
            product_id=query.product_id,
            campaign_id=query.campaign_id,
            min_rating=query.min_rating,
            has_video=query.has_video,
        ),
    ]
    if query.cursor:
        featured, created_at, ident = query.cursor
        later = or_(T.created_at < created_at, and_(T.created_at == created_at, T.id < ident))
        where.append(
            or_(T.featured.is_(False), and_(T.featured.is_(True), later))
            if featured
            else and_(T.featured.is_(False), later)
        )
    return (
        select(T)
        .join(R, T.request_id == R.id)
        .options(contains_eager(T.request))
        .where(*where)
        .order_by(T.featured.desc(), T.created_at.desc(), T.id.desc())
        .limit(query.limit + 1)
    )


def public_url(endpoint, **values):
    """An absolute address on PUBLIC_BASE_URL (what customers and shops reach us at)."""
    return current_settings().public_base_url.rstrip("/") + url_for(endpoint, **values)


def media_url(testimonial, kind):
    return public_url("showcase.media", public_id=testimonial.public_id, kind=kind)


def video_url(testimonial):
    return media_url(testimonial, "video") if testimonial.video_key else None


def poster_url(testimonial):
    return media_url(testimonial, "poster") if testimonial.poster_key else None


def as_json(testimonial):
    req = testimonial.request
    return {
        "id": testimonial.public_id,
        "product_id": req.product_id,
        "product_title": req.product_title,
        "display_name": display_name(testimonial),
        "rating": testimonial.rating,
        "text": testimonial.text,
        "video_url": video_url(testimonial),
        "poster_url": poster_url(testimonial),
        "created_at": isoformat(testimonial.created_at),
        "featured": testimonial.featured,
        "share_url": public_url("showcase.share", public_id=testimonial.public_id),
    }
