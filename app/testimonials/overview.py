"""The overview's testimonial figures: what waits for moderation, the latest ones, and the
funnel first message → link opened → testimonial (video or text) per campaign and per
product, for the requests first sent in the period.

Erased and withdrawn testimonials still count here: the funnel says what happened, and an
erasure must not change the overview's totals (their rows stay, emptied)."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import contains_eager

from app.campaigns.models import Campaign
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.testimonials.models import Testimonial

R, T = TestimonialRequest, Testimonial
LATEST = 6
TOP_PRODUCTS = 10


@dataclass
class FunnelRow:
    key: str
    label: str
    first_sent: int
    opened: int
    testimonials: int
    videos: int

    @property
    def texts(self):
        return self.testimonials - self.videos

    def rate(self, part):
        return part / self.first_sent if self.first_sent else None


def _funnel(period, campaign_id, group, label, limit=None):
    first = datetime.combine(period.first_day, time.min, tzinfo=UTC)
    after = datetime.combine(period.last_day + timedelta(days=1), time.min, tzinfo=UTC)
    has_video = case((T.video_content_type.is_not(None), 1), else_=0)
    query = (
        select(
            group,
            label,
            func.count(R.id),
            func.count(R.clicked_at),
            func.count(T.id),
            func.coalesce(func.sum(has_video), 0),
        )
        .select_from(R)
        .outerjoin(T, T.request_id == R.id)
        .where(R.sent_at >= first, R.sent_at < after)
        .group_by(group)
        .order_by(func.count(R.id).desc(), group)
    )
    if campaign_id is not None:
        query = query.where(R.campaign_id == campaign_id)
    if limit:
        query = query.limit(limit)
    return [FunnelRow(str(k), lbl or str(k), *map(int, counts)) for k, lbl, *counts in db.session.execute(query)]


def funnel_by_campaign(period, campaign_id=None):
    return _funnel(
        period, campaign_id, R.campaign_id, select(Campaign.name).where(Campaign.id == R.campaign_id).scalar_subquery()
    )


def funnel_by_product(period, campaign_id=None):
    return _funnel(period, campaign_id, R.product_id, func.max(R.product_title), TOP_PRODUCTS)


def latest_testimonials():
    return db.session.scalars(
        select(T)
        .join(R, T.request_id == R.id)
        .options(contains_eager(T.request))
        .where(T.status.in_(("pending", "approved", "rejected")))
        .order_by(T.created_at.desc(), T.id.desc())
        .limit(LATEST)
    ).all()


def waiting_count():
    return db.session.scalar(select(func.count(T.id)).where(T.status == "pending"))


def totals(rows):
    return FunnelRow(
        "all", "All", *(sum(getattr(r, f) for r in rows) for f in ("first_sent", "opened", "testimonials", "videos"))
    )
