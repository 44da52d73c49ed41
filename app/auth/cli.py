"""``flask admins create EMAIL`` and ``flask admins set-password EMAIL`` (both ask for the
password) and ``flask admins list``."""

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.auth.models import Admin
from app.auth.services import AdminInvalid, create_admin, find_admin, set_password
from app.clock import isoformat, now
from app.extensions import db

admins_cli = AppGroup("admins", help="Dashboard accounts.")


@admins_cli.command("create")
@click.argument("email")
@click.password_option(help="Asked for interactively when not given.")
def create(email, password):
    """Create a dashboard admin; the password is stored as a scrypt hash."""
    try:
        admin = create_admin(email, password, now())
    except AdminInvalid as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"admin {admin.email} created")


@admins_cli.command("set-password")
@click.argument("email")
@click.password_option(help="Asked for interactively when not given.")
def set_password_command(email, password):
    """Give an admin a new password; their sessions in every browser end."""
    admin = find_admin(email)
    if admin is None:
        raise click.ClickException(f"no admin with email {email.strip().lower()!r} (see flask admins list)")
    try:
        set_password(admin, password)
    except AdminInvalid as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"password of {admin.email} changed; their sessions are logged out")


@admins_cli.command("list")
def list_():
    for admin in db.session.scalars(select(Admin).order_by(Admin.id)):
        click.echo(f"{admin.id} {admin.email} last login {isoformat(admin.last_login_at) or 'never'}")
