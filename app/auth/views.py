"""Log in and out. Every dashboard page needs a login; webhooks and customer pages don't."""

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth.forms import LoginForm
from app.auth.services import authenticate
from app.clock import now
from app.extensions import db
from app.input_guard import refuse_nul_in_form

bp = Blueprint("auth", __name__, template_folder="templates")
bp.before_request(refuse_nul_in_form)


def safe_next(target):
    """Only same-site paths: a login link must not bounce the merchant elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.home"))
    form = LoginForm()
    if form.validate_on_submit():
        admin = authenticate(form.email.data, form.password.data, now())
        if admin is not None:
            db.session.commit()
            login_user(admin, remember=False)
            return redirect(safe_next(request.args.get("next")) or url_for("dashboard.home"))
        form.password.errors.append("Email or password is not right.")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
