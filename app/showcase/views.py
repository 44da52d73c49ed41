"""Public routes (no login): the feed, the wall, the widget script, the share page and the
media behind them. Only public testimonials (``public_clause``) are ever reachable; a
media URL of one that is no longer public answers 404 like one that never existed."""

import json
import os
import secrets

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from app.extensions import csrf, db
from app.lifecycle.models import TestimonialRequest
from app.security import blueprint_security, content_security
from app.showcase.branding import THEMES, brand_colour, frame_ancestors
from app.showcase.feed import FeedInvalid, FeedQuery, as_json, encode_cursor, feed_select
from app.showcase.media import media_response
from app.testimonials.models import Testimonial
from app.testimonials.moderation import display_name, public_clause
from app.testimonials.removal import testimonial_of_request

bp = Blueprint(
    "showcase", __name__, template_folder="templates", static_folder="static", static_url_path="/embed/static"
)
csrf.exempt(bp)

FEED_MAX_AGE = 60  # seconds a shop's page (or a CDN) may reuse an answer
MEDIA_MAX_AGE = 60  # short: an unpublished testimonial's media stops working soon everywhere
WALL_DEFAULT_LIMIT = 12
STATIC = os.path.join(os.path.dirname(__file__), "static")
MEDIA_KINDS = ("video", "poster")


def style_sources():
    """Our stylesheet, plus the page's one <style> (the brand colour) by its nonce."""
    nonce = g.get("style_nonce")
    return "'self'" + (f" 'nonce-{nonce}'" if nonce else "")


def new_style_nonce():
    g.style_nonce = secrets.token_urlsafe(12)
    return g.style_nonce


# The public pages load nothing but our own files; the wall alone may be framed (below).
blueprint_security(
    bp,
    csp={
        "default_src": "'none'",
        "script_src": "'self'",
        "style_src": style_sources,
        "img_src": "'self' data:",
        "media_src": "'self'",
        "connect_src": "'self'",
        "base_uri": "'none'",
        "form_action": "'self'",
    },
)


def feed_error(exc):
    response = jsonify({"error": str(exc), "field": exc.field, "status": 400})
    response.status_code = 400
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def run_feed(query):
    rows = db.session.scalars(feed_select(query)).unique().all()
    items, more = rows[: query.limit], len(rows) > query.limit
    return items, (encode_cursor(items[-1]) if more and items else None)


@bp.app_template_global("customer_testimonial")
def customer_testimonial(req):
    """The testimonial sent through this request's link, for the customer's pages."""
    return testimonial_of_request(req.id)


@bp.route("/api/testimonials", methods=["GET"])
def feed():
    try:
        query = FeedQuery.from_args(request.args)
    except FeedInvalid as exc:
        return feed_error(exc)
    items, next_cursor = run_feed(query)
    body = json.dumps(
        {"testimonials": [as_json(t) for t in items], "next": next_cursor}, ensure_ascii=False, separators=(",", ":")
    )
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = f"public, max-age={FEED_MAX_AGE}"
    response.add_etag()
    return response.make_conditional(request)


@bp.after_request
def cors_preflight(response):
    # A browser's preflight (a shop's script sending a custom header): GET only, from anywhere.
    if request.method == "OPTIONS" and request.path == "/api/testimonials":
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET"
        response.headers["Access-Control-Allow-Headers"] = "If-None-Match"
        response.headers["Access-Control-Max-Age"] = "86400"
    return response


@bp.get("/embed/wall")
@content_security(frame_ancestors=frame_ancestors)  # EMBED_ALLOWED_ORIGINS (app.showcase.branding)
def wall():
    theme = request.args.get("theme", "light")
    nonce = new_style_nonce()
    try:
        if theme not in THEMES:
            raise FeedInvalid(f"theme must be one of {', '.join(THEMES)}", "theme")
        query = FeedQuery.from_args(request.args, default_limit=WALL_DEFAULT_LIMIT)
    except FeedInvalid as exc:
        response = current_app.make_response(
            (
                render_template(
                    "showcase/wall.html",
                    items=[],
                    error=str(exc),
                    theme="light",
                    accent=brand_colour(),
                    nonce=nonce,
                    more_url=None,
                    frame="",
                    display_name=display_name,
                ),
                400,
            )
        )
        return response
    items, next_cursor = run_feed(query)
    frame = request.args.get("frame", "")[:40]
    more_url = None
    if next_cursor:
        more_url = url_for(
            ".wall",
            **query.args(),
            theme=theme,
            limit=query.limit,
            cursor=next_cursor,
            **({"frame": frame} if frame else {}),
        )
    response = current_app.make_response(
        render_template(
            "showcase/wall.html",
            items=items,
            error=None,
            theme=theme,
            accent=brand_colour(),
            nonce=nonce,
            more_url=more_url,
            frame=frame,
            display_name=display_name,
        )
    )
    response.headers["Cache-Control"] = f"public, max-age={FEED_MAX_AGE}"
    return response


@bp.get("/embed/widget.js")
def widget():
    with open(os.path.join(STATIC, "widget.js"), "rb") as file:  # 3 kB, read whole: no file left open
        response = current_app.response_class(file.read(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.add_etag()
    response.make_conditional(request)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def public_testimonial_or_404(public_id):
    testimonial = None
    if len(public_id) <= 32:
        testimonial = db.session.scalar(
            select(Testimonial)
            .join(TestimonialRequest, Testimonial.request_id == TestimonialRequest.id)
            .options(contains_eager(Testimonial.request))
            .where(Testimonial.public_id == public_id, public_clause())
        )
    if testimonial is None:
        abort(404, description="There is no testimonial at this address (it may have been taken down).")
    return testimonial


@bp.get("/t/<public_id>")
def share(public_id):
    testimonial = public_testimonial_or_404(public_id)
    nonce = new_style_nonce()
    response = current_app.make_response(
        render_template(
            "showcase/share.html",
            t=testimonial,
            name=display_name(testimonial),
            accent=brand_colour(),
            nonce=nonce,
            item=as_json(testimonial),
        )
    )
    response.headers["Cache-Control"] = f"public, max-age={MEDIA_MAX_AGE}"
    return response


@bp.get("/media/<public_id>/<kind>")
def media(public_id, kind):
    if kind not in MEDIA_KINDS:
        abort(404)
    testimonial = public_testimonial_or_404(public_id)
    response = media_response(testimonial, kind)
    response.headers["Cache-Control"] = f"public, max-age={MEDIA_MAX_AGE}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
