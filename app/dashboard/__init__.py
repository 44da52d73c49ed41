"""Shared plumbing for the merchant dashboard's blueprints."""

from flask import Blueprint
from flask_login import login_required

from app.input_guard import refuse_nul_in_form


def dashboard_blueprint(name, import_name, **kwargs):
    """A blueprint whose every route needs a logged-in admin."""
    bp = Blueprint(name, import_name, template_folder="templates", **kwargs)

    @bp.before_request
    @login_required
    def require_login():
        return None

    bp.before_request(refuse_nul_in_form)
    return bp
