"""What every dashboard page shows around its content: navigation counts and banners."""

import logging

from flask import current_app, g
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.states import FAILED
from app.testimonials.models import Testimonial

log = logging.getLogger("app.dashboard")


def init_app(app, banner_sources):
    """Put the navigation counts and banners on every page. ``banner_sources``: callables
    returning a list of (level, message) banners (e.g. SLO breaches), each called once per
    page render; the factory names them."""
    app.extensions["dashboard_banners"] = tuple(banner_sources)
    app.context_processor(nav_context)


def nav_context():
    # An error page about the database itself must not read it (not even the logged-in admin).
    if g.get("database_unusable") or not current_user.is_authenticated:
        return {}
    try:
        failed = db.session.scalar(select(func.count(TestimonialRequest.id)).where(TestimonialRequest.status == FAILED))
        pending = db.session.scalar(select(func.count(Testimonial.id)).where(Testimonial.status == "pending"))
        banners = []
        for source in current_app.extensions["dashboard_banners"]:
            banners.extend(source())
    except SQLAlchemyError:
        # The page's own queries will fail and be reported; a page that needs none still shows.
        log.warning("navigation counts and banners left out: the database cannot be read", exc_info=True)
        db.session.rollback()
        failed, pending, banners = None, None, []
    return {
        "nav_failed_count": failed,
        "nav_pending_testimonials": pending,
        "nav_outbox": "outbox" in (current_app.config["EMAIL_PROVIDER"], current_app.config["SMS_PROVIDER"]),
        "banners": banners,
        "nav_endpoints": current_app.view_functions.keys(),
    }
