"""The Settings screen (dashboard) and the brand assets every page and email may load:
``/brand/logo`` and ``/brand/theme.css`` (public: customers' pages and emails need them;
versioned addresses, so a new logo or colour is a new URL and caches can keep the old one)."""

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.settings.current import FIELDS, current_settings
from app.settings.images import MAX_LOGO_BYTES
from app.settings.services import SettingsInvalid, logo_row, save_settings
from app.web import dashboard_blueprint

bp = dashboard_blueprint("settings", __name__, url_prefix="/settings")
brand_bp = Blueprint("brand", __name__, url_prefix="/brand")

TIMEZONE_SUGGESTIONS = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Australia/Sydney",
)


def render_form(form=None, errors=None, status=200):
    from app.settings.models import SETTINGS_ROW_ID, ShopSettings

    row = db.session.get(ShopSettings, SETTINGS_ROW_ID)
    saved = {f.name: getattr(row, f.name) or "" for f in FIELDS}
    return render_template(
        "settings/index.html",
        fields=FIELDS,
        values={**saved, **(form or {})},
        errors=errors or {},
        settings=current_settings(),
        row=row,
        max_logo_kb=MAX_LOGO_BYTES // 1024,
        timezones=TIMEZONE_SUGGESTIONS,
    ), status


@bp.get("/")
def index():
    return render_form()


@bp.post("/")
def save():
    form = {f.name: request.form.get(f.name, "") for f in FIELDS}
    upload = request.files.get("logo")
    logo = None
    if upload is not None and upload.filename:
        logo = upload.stream.read(MAX_LOGO_BYTES + 1)
        if not logo:
            return render_form(form, {"logo": "the file is empty"}, 400)
    try:
        replanned = save_settings(
            form, now(), logo=logo, remove_logo=request.form.get("remove_logo") == "yes", by=current_user.email
        )
    except SettingsInvalid as exc:
        db.session.rollback()
        label = next((f.label for f in FIELDS if f.name == exc.field), "Logo")
        flash(f"Nothing was saved: {label.lower()} — {exc}", "error")
        return render_form(form, {exc.field: str(exc)}, 400)
    db.session.commit()
    extra = (
        f" {replanned} pending send{'s' if replanned != 1 else ''} replanned for the new time zone or quiet hours."
        if replanned
        else ""
    )
    flash("Settings saved; they apply now." + extra, "success")
    return redirect(url_for("settings.index"))


@brand_bp.get("/logo")
def logo():
    row = logo_row()
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
