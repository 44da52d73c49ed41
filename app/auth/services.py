"""Admin accounts: creation rules and authentication."""

import re
import secrets
from functools import cache

from flask import current_app
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import Admin
from app.extensions import db

MIN_PASSWORD = 10
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AdminInvalid(ValueError):
    pass


def create_admin(email, password, now):
    email = (email or "").strip().lower()
    if not EMAIL.match(email):
        raise AdminInvalid(f"{email!r} is not an email address")
    if len(password or "") < MIN_PASSWORD:
        raise AdminInvalid(f"the password must be at least {MIN_PASSWORD} characters")
    if db.session.scalar(select(Admin.id).where(Admin.email == email)):
        raise AdminInvalid(f"an admin with email {email} already exists")
    admin = Admin(email=email, created_at=now)
    admin.set_password(password)
    db.session.add(admin)
    db.session.flush()
    return admin


@cache
def _unknown_account_hash(method):
    """A hash to check a password against when no admin has the email: an unknown email
    costs the same work as a known one (same method and cost), so the time tells nothing."""
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def end_sessions(admin):
    """Every session of this admin, in any browser, stops working (one UPDATE)."""
    db.session.execute(update(Admin).where(Admin.id == admin.id).values(session_version=Admin.session_version + 1))
    db.session.refresh(admin)


def find_admin(email):
    return db.session.scalar(select(Admin).where(func.lower(Admin.email) == (email or "").strip().lower()))


def set_password(admin, password):
    """A new password (the same rules as at creation); the admin's sessions end."""
    if len(password or "") < MIN_PASSWORD:
        raise AdminInvalid(f"the password must be at least {MIN_PASSWORD} characters")
    admin.set_password(password)
    db.session.flush()
    end_sessions(admin)


def authenticate(email, password, now):
    admin = find_admin(email)
    if admin is None:
        check_password_hash(_unknown_account_hash(current_app.config["PASSWORD_HASH_METHOD"]), password or "")
        return None
    if not admin.check_password(password or ""):
        return None
    admin.last_login_at = now
    return admin
