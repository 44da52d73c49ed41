"""The brand assets every page and email may load: ``/brand/logo`` and ``/brand/theme.css``
(public: customers' pages and emails need them; versioned addresses, so a new logo or
colour is a new URL and caches can keep the old one). The Settings screen that changes
them: app.settings_admin."""

from flask import Blueprint, abort, make_response, render_template, request

from app.extensions import db
from app.settings.current import current_settings
from app.settings.models import SETTINGS_ROW_ID, ShopSettings

brand_bp = Blueprint("brand", __name__, url_prefix="/brand", template_folder="templates")


@brand_bp.get("/logo")
def logo():
    row = db.session.get(ShopSettings, SETTINGS_ROW_ID)
    if row is None or not row.logo:
        abort(404, description="This shop has no logo.")
    response = make_response(row.logo)
    response.headers["Content-Type"] = row.logo_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    if request.args.get("v") == str(row.version):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


@brand_bp.get("/theme.css")
def theme():
    settings = current_settings()
    response = make_response(render_template("settings/theme.css", settings=settings))
    response.headers["Content-Type"] = "text/css; charset=utf-8"
    response.headers["Cache-Control"] = (
        "public, max-age=31536000, immutable" if request.args.get("v") == str(settings.version) else "no-cache"
    )
    return response
