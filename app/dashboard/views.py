"""The dashboard home. (Monitoring fills it in: app/monitoring.)"""

from flask import render_template

from app.dashboard import dashboard_blueprint

bp = dashboard_blueprint("dashboard", __name__)


@bp.get("/")
def home():
    return render_template("dashboard/home.html")
