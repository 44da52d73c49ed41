"""``flask admins create EMAIL`` (asks for the password) and ``flask admins list``."""

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.auth.models import Admin
from app.auth.services import AdminInvalid, create_admin
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


@admins_cli.command("list")
def list_():
    for admin in db.session.scalars(select(Admin).order_by(Admin.id)):
        click.echo(f"{admin.id} {admin.email} last login {isoformat(admin.last_login_at) or 'never'}")
