"""Merchant accounts for the dashboard."""

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.clock import utcnow
from app.dbtypes import UTCDateTime
from app.extensions import db


class Admin(UserMixin, db.Model):
    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_login_at = mapped_column(UTCDateTime)
    # Part of every session's user id: logging out or a new password increments it, and
    # the user loader refuses a session that carries an older one (a copied cookie).
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    def get_id(self):
        return f"{self.id}.{self.session_version}"

    def set_password(self, password):
        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)


def admin_for_session(session_user_id):
    """The admin a session's ``_user_id`` ("<id>.<session version>") stands for, or None
    when it is malformed or its version is no longer the admin's."""
    admin_id, dot, version = str(session_user_id).partition(".")
    if not (dot and admin_id.isdigit() and version.isdigit() and len(admin_id) < 10 and len(version) < 10):
        return None
    admin = db.session.get(Admin, int(admin_id))
    return admin if admin is not None and admin.session_version == int(version) else None
