"""Shared plumbing for the merchant dashboard's blueprints."""

from flask import Blueprint, abort, request
from flask_login import current_user, login_required

from app.input_guard import refuse_nul_in_form


def dashboard_blueprint(name, import_name, **kwargs):
    """A blueprint whose every route needs a logged-in admin."""
    bp = Blueprint(name, import_name, template_folder="templates", **kwargs)

    @bp.before_request
    def json_clients_get_401():
        # A script (the template editor's live preview) cannot follow a redirect to the
        # login page; it gets a JSON error that says what happened.
        from app import wants_json

        if request.method != "OPTIONS" and not current_user.is_authenticated and wants_json():
            abort(401, description="You are not logged in (or the session expired): log in to the dashboard again.")

    @bp.before_request
    @login_required
    def require_login():
        return None

    bp.before_request(refuse_nul_in_form)
    return bp
