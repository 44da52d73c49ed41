"""Admin accounts: creation rules and authentication."""

import re

from sqlalchemy import func, select

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


def authenticate(email, password, now):
    admin = db.session.scalar(select(Admin).where(func.lower(Admin.email) == (email or "").strip().lower()))
    if admin is None or not admin.check_password(password or ""):
        return None
    admin.last_login_at = now
    return admin
