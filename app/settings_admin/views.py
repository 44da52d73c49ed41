"""The Settings screen (dashboard)."""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.settings.current import FIELDS, current_settings
from app.settings.images import MAX_LOGO_BYTES
from app.settings.models import SETTINGS_ROW_ID, ShopSettings
from app.settings_admin.services import SettingsInvalid, save_settings
from app.web import dashboard_blueprint

bp = dashboard_blueprint("settings", __name__, url_prefix="/settings")

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
