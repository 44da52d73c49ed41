"""The Testimonials screen's queries: the filter, its counts per tab, one page. Reads only;
moving testimonials between statuses is ``app.testimonials.moderation``."""

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import contains_eager

from app.campaigns.models import Campaign
from app.extensions import db
from app.input_guard import database_id
from app.lifecycle.models import TestimonialRequest
from app.testimonials.models import Testimonial
from app.testimonials.moderation import RATINGS, STATUSES, TABS, filter_conditions, public_clause

T, R = Testimonial, TestimonialRequest
MAX_SEARCH = 200


class FilterInvalid(ValueError):
    """A filter value the screen cannot use; the message names it."""


@dataclass(frozen=True)
class TestimonialFilter:
    __test__ = False

    status: str | None = None
    product: str | None = None
    campaign_id: int | None = None
    min_rating: int | None = None
    has_video: bool | None = None
    created_from: date | None = None
    created_to: date | None = None
    q: str | None = None
    request_id: int | None = None

    @classmethod
    def from_args(cls, args):
        """Read the query string; a value that cannot be used raises FilterInvalid."""

        def day(name):
            text = (args.get(name) or "").strip()
            if not text:
                return None
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise FilterInvalid(
                    f"{name.replace('_', ' ')} must be a date (YYYY-MM-DD), got {text[:40]!r}"
                ) from None

        def number(name, allowed=None):
            text = (args.get(name) or "").strip()
            if not text:
                return None
            try:
                value = database_id(text) if allowed is None else int(text)
            except ValueError:
                raise FilterInvalid(f"{name.replace('_', ' ')} must be a number, got {text[:40]!r}") from None
            if allowed is not None and value not in allowed:
                raise FilterInvalid(f"{name.replace('_', ' ')} must be one of {', '.join(map(str, allowed))}")
            return value

        status = args.get("status") or None
        if status is not None and status not in STATUSES:
            raise FilterInvalid(f"status must be one of {', '.join(STATUSES)}")
        video = (args.get("has_video") or "").strip().lower()
        if video not in ("", "yes", "no"):
            raise FilterInvalid("has video must be yes or no")
        q = (args.get("q") or "").strip()[:MAX_SEARCH] or None
        product = (args.get("product") or "").strip()[:64] or None
        flt = cls(
            status=status,
            product=product,
            campaign_id=number("campaign_id"),
            min_rating=number("min_rating", RATINGS),
            has_video={"yes": True, "no": False}.get(video),
            created_from=day("created_from"),
            created_to=day("created_to"),
            q=q,
            request_id=number("request"),
        )
        if flt.created_from and flt.created_to and flt.created_from > flt.created_to:
            raise FilterInvalid("the first date is after the last one")
        return flt

    def to_args(self, **changes):
        """The filter as query arguments (links keep the rest of the filter)."""
        args = {}
        for f in fields(self):
            value = changes.get(f.name, getattr(self, f.name))
            if value is None or value == "":
                continue
            name = "request" if f.name == "request_id" else f.name
            args[name] = (
                {True: "yes", False: "no"}.get(value, value)
                if isinstance(value, bool)
                else (value.isoformat() if isinstance(value, date) else str(value))
            )
        return args

    def conditions(self, with_status=True):
        where = []
        if with_status and self.status:
            where.append(T.status == self.status)
        elif with_status:
            where.append(T.status != "erased")  # what is left of an erased one is a count, not a card
        where += filter_conditions(
            product_id=self.product, campaign_id=self.campaign_id, min_rating=self.min_rating, has_video=self.has_video
        )
        if self.created_from:
            where.append(T.created_at >= datetime.combine(self.created_from, time.min, tzinfo=UTC))
        if self.created_to:
            where.append(T.created_at < datetime.combine(self.created_to + timedelta(days=1), time.min, tzinfo=UTC))
        if self.q:
            where.append(search_condition(self.q))
        if self.request_id:
            where.append(T.request_id == self.request_id)
        return where


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_condition(q):
    """Words in the text, the customer's names or the product's title."""
    pattern = f"%{_escape_like(q)}%"
    columns = [T.text, T.display_name, R.customer_first_name, R.customer_last_name, R.product_title, R.order_id]
    full_name = func.coalesce(R.customer_first_name, "") + " " + func.coalesce(R.customer_last_name, "")
    return or_(*(column.ilike(pattern, escape="\\") for column in columns), full_name.ilike(pattern, escape="\\"))


def testimonials_query(flt=None):
    """Newest first, with their request (product, customer) loaded in the same query."""
    flt = flt or TestimonialFilter()
    return (
        select(T)
        .join(R, T.request_id == R.id)
        .options(contains_eager(T.request))
        .where(*flt.conditions())
        .order_by(T.created_at.desc(), T.id.desc())
    )


def tab_counts(flt=None):
    """{status: n} for the tabs, under the rest of the filter (erased ones are not listed)."""
    flt = flt or TestimonialFilter()
    rows = db.session.execute(
        select(T.status, func.count())
        .join(R, T.request_id == R.id)
        .where(*flt.conditions(with_status=False))
        .group_by(T.status)
    ).all()
    counts = dict.fromkeys(TABS, 0)
    counts.update({status: n for status, n in rows if status in counts})
    return counts


def pending_count():
    return db.session.scalar(select(func.count(T.id)).where(T.status == "pending"))


def filter_choices():
    """Products and campaigns that have testimonials, for the filter's drop-downs."""
    products = db.session.execute(
        select(R.product_id, func.max(R.product_title))
        .join(T, T.request_id == R.id)
        .group_by(R.product_id)
        .order_by(func.max(R.product_title))
    ).all()
    campaigns = db.session.execute(select(Campaign.id, Campaign.name).order_by(Campaign.name)).all()
    return products, campaigns


def public_count(product_id=None):
    """How many testimonials the public sees (of one product)."""
    query = select(func.count(T.id)).join(R, T.request_id == R.id).where(public_clause())
    if product_id:
        query = query.where(R.product_id == product_id)
    return db.session.scalar(query)
