"""What every dashboard page shows around its content: navigation counts and banners."""

from flask import current_app
from flask_login import current_user
from sqlalchemy import func, select

from app.extensions import db
from app.lifecycle.models import TestimonialRequest

# Other modules append callables returning a list of (level, message) banners, e.g. SLO
# breaches from monitoring. Each is called once per page render.
BANNER_SOURCES = []


def nav_context():
    if not current_user.is_authenticated:
        return {}
    failed = db.session.scalar(select(func.count(TestimonialRequest.id)).where(TestimonialRequest.status == "failed"))
    banners = []
    for source in BANNER_SOURCES:
        banners.extend(source())
    return {
        "nav_failed_count": failed,
        "nav_outbox": "outbox" in (current_app.config["EMAIL_PROVIDER"], current_app.config["SMS_PROVIDER"]),
        "banners": banners,
        "nav_endpoints": current_app.view_functions.keys(),
    }
