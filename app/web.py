"""What every page's blueprint shares: the dashboard blueprint (an admin must be logged in),
whether an answer is JSON, and the CSRF-only confirmation form."""

from flask import Blueprint, abort, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from app.input_guard import refuse_nul_in_form

# Paths of the JSON APIs: every answer, errors included, is JSON whatever the Accept header.
JSON_PATHS = ("/webhooks/", "/templates/preview", "/api/")


def wants_json():
    return request.path.startswith(JSON_PATHS) or (
        request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json"
    )


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token (status buttons, deletions)."""


def dashboard_blueprint(name, import_name, **kwargs):
    """A blueprint whose every route needs a logged-in admin."""
    bp = Blueprint(name, import_name, template_folder="templates", **kwargs)

    @bp.before_request
    def json_clients_get_401():
        # A script (the template editor's live preview) cannot follow a redirect to the
        # login page; it gets a JSON error that says what happened.
        if request.method != "OPTIONS" and not current_user.is_authenticated and wants_json():
            abort(401, description="You are not logged in (or the session expired): log in to the dashboard again.")

    @bp.before_request
    @login_required
    def require_login():
        return None

    bp.before_request(refuse_nul_in_form)
    return bp
