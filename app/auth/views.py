"""Log in and out. Every dashboard page needs a login; webhooks and customer pages don't."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth.forms import ChangePasswordForm, LoginForm
from app.auth.services import AdminInvalid, authenticate, end_sessions, set_password
from app.clock import now
from app.extensions import db, limiter
from app.input_guard import refuse_nul_in_form

bp = Blueprint("auth", __name__, template_folder="templates")
bp.before_request(refuse_nul_in_form)


def safe_next(target):
    """Only same-site paths: a login link must not bounce the merchant elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


def account_key():
    """The per-account counter: the email typed, however it is capitalised."""
    return "account:" + (request.form.get("email") or "").strip().lower()[:254]


def failed_login(response):
    return response.status_code != 302  # a success redirects; anything else counts


TOO_MANY = (
    "Too many failed log-ins for this account or from this address. Wait a minute, then try again "
    "(if you forgot the password, another admin can set a new one with flask admins set-password)."
)


def _login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], scope="login-address", deduct_when=failed_login, error_message=TOO_MANY)
@limiter.limit(
    _login_limit,
    methods=["POST"],
    scope="login-account",
    key_func=account_key,
    deduct_when=failed_login,
    error_message=TOO_MANY,
)
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
    # Ends this admin's sessions everywhere: a copy of the cookie no longer works.
    end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        admin = current_user._get_current_object()
        if not admin.check_password(form.current_password.data):
            form.current_password.errors.append("This is not your current password.")
        else:
            try:
                set_password(admin, form.new_password.data)
            except AdminInvalid as exc:
                db.session.rollback()
                form.new_password.errors.append(str(exc).capitalize() + ".")
            else:
                db.session.commit()
                login_user(admin, remember=False)  # this browser stays in, with the new version
                flash("Password changed. Your other sessions are logged out.", "success")
                return redirect(url_for("dashboard.home"))
    return render_template("auth/password.html", form=form)
