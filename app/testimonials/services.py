"""Moderating testimonials. Flushes, never commits."""

import logging

from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.testimonials.models import Testimonial

log = logging.getLogger("app.testimonials")

STATUSES = ("pending", "approved", "hidden")
ACTIONS = {"approve": "approved", "hide": "hidden"}


def testimonials_query(status=None, request_id=None):
    """Newest first, with their request (product, customer) loaded in the same query;
    ``request_id`` narrows it to one request's testimonial (the link from its detail page)."""
    query = (
        select(Testimonial)
        .join(TestimonialRequest, Testimonial.request_id == TestimonialRequest.id)
        .options(contains_eager(Testimonial.request))
        .order_by(Testimonial.created_at.desc(), Testimonial.id.desc())
    )
    if status in STATUSES:
        query = query.where(Testimonial.status == status)
    if request_id is not None:
        query = query.where(Testimonial.request_id == request_id)
    return query


def moderate(testimonial, action):
    """Approve or hide a testimonial; returns the new status."""
    testimonial.status = ACTIONS[action]
    db.session.flush()
    log.info("testimonial=%s %s", testimonial.id, testimonial.status)
    return testimonial.status
