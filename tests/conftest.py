"""Fixtures: the real app on a real SQLite file with the migrations applied, and a clock
the test controls.

Migrations run once per session into a template file; each test gets a fresh copy.
"""

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from app import create_app
from app.extensions import db
from config import TestConfig


class FakeClock:
    def __init__(self, start):
        self.current = start

    def __call__(self):
        return self.current

    def set(self, value):
        self.current = value if isinstance(value, datetime) else parse(value)
        return self.current

    def advance(self, **delta):
        self.current += timedelta(**delta)
        return self.current


def parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def make_config(tmp_path, db_file, **overrides):
    attrs = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        **overrides,
    }
    return type("Config", (TestConfig,), attrs)


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    """A database file built by `flask db upgrade` (Alembic), never by create_all."""
    from flask_migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "template.db"
    app = create_app(make_config(path.parent, path))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path


@pytest.fixture
def clock():
    return FakeClock(parse("2026-11-20T12:00:00Z"))


@pytest.fixture
def app_factory(tmp_path, migrated_db, clock):
    """Builds apps sharing one database file (two apps = two processes' worth of engines)."""
    db_file = tmp_path / "test.db"
    shutil.copy(migrated_db, db_file)
    apps = []

    def build(**overrides):
        app = create_app(make_config(tmp_path, db_file, CLOCK=clock, **overrides))
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory):
    app = app_factory()
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def cli(runner):
    """Run a flask command and return its parsed JSON output (asserts success)."""

    def run(*args):
        result = runner.invoke(args=[*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return run
