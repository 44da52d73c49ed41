"""``flask seed-demo``: the demo shop ``make run`` serves."""

import logging
import os
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from app.clock import now as clock_now
from app.database import relax_durability
from app.demo.seed import demo_login_path, seed_demo, seed_demo_admin
from app.extensions import db


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Seed a demo campaign and history unless the database already has campaigns."""
    app_log = logging.getLogger("app")
    level = app_log.level
    # The history is hundreds of step lines and its simulated send failures: keep make run readable.
    app_log.setLevel(logging.ERROR)
    # Demo data: a power cut mid-seed costs a re-seed, not a customer's message.
    relax_durability(db.engine)
    try:
        started = time.monotonic()
        click.echo("Seeding the demo shop (orders, messages, replies and testimonials of the last 30 days)…")
        result = seed_demo(clock_now(), progress=lambda line: click.echo(line))
        if result.startswith("demo data seeded"):
            click.echo(f"  100%  done in {time.monotonic() - started:.0f} s")
        click.echo(result)
    finally:
        app_log.setLevel(level)
    login_file = seed_demo_admin(
        clock_now(), demo_login_path(current_app.config["SQLALCHEMY_DATABASE_URI"], current_app.instance_path)
    )
    with open(login_file) as f:
        click.echo(f.read().strip())
    shown = os.path.relpath(login_file)
    click.echo(f"(kept in {login_file if shown.startswith('..') else shown})")
