"""Fixtures: the real app on a real SQLite file with the migrations applied, and a clock
the test controls.

Migrations run once per session into a template file; each test gets a fresh copy.
Every app the tests build shares one store of compiled Jinja templates (a fresh app would
otherwise compile base.html and its pages again: ~0.1 s on each test's first page).
"""

import json
import logging
import shutil
from datetime import UTC, datetime, timedelta

import jinja2
import pytest
from flask import Flask

from app import create_app
from app.extensions import db
from config import TestConfig


class SharedCompiledTemplates(jinja2.BytecodeCache):
    """Jinja's bytecode cache, kept in memory for the test process: a template is compiled
    once, and again only when its source changes (Jinja compares the checksum)."""

    def __init__(self):
        self.code = {}

    def load_bytecode(self, bucket):
        checksum, code = self.code.get(bucket.key, (None, None))
        if checksum == bucket.checksum:
            bucket.code = code

    def dump_bytecode(self, bucket):
        self.code[bucket.key] = (bucket.checksum, bucket.code)


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": SharedCompiledTemplates()}


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
def database_url(tmp_path, migrated_db):
    """A fresh copy of the migrated database for this test (tests/postgres overrides it)."""
    db_file = tmp_path / "test.db"
    shutil.copy(migrated_db, db_file)
    return f"sqlite:///{db_file}"


@pytest.fixture
def app_factory(tmp_path, database_url, clock):
    """Builds apps sharing one database (two apps = two processes' worth of engines)."""
    apps = []

    def build(**overrides):
        app = create_app(
            make_config(tmp_path, None, **{"SQLALCHEMY_DATABASE_URI": database_url, "CLOCK": clock, **overrides})
        )
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


CSRF_RE = __import__("re").compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(client, url):
    """The CSRF token of the form on ``url`` (tests post forms like a browser would)."""
    page = client.get(url)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no csrf_token on {url} ({page.status_code})"
    return match.group(1)


class AuthActions:
    """Log in and out through the real login form (flask tutorial style)."""

    def __init__(self, client, app):
        self.client, self.app = client, app

    def create(self, email="merchant@shop.example", password="correct horse battery"):
        from app.auth.services import create_admin
        from app.clock import now

        with self.app.app_context():
            create_admin(email, password, now())
            db.session.commit()
        return email, password

    def login(self, email="merchant@shop.example", password="correct horse battery"):
        token = csrf_from(self.client, "/login")
        return self.client.post("/login", data={"email": email, "password": password, "csrf_token": token})

    def logout(self):
        token = csrf_from(self.client, "/")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client, app):
    return AuthActions(client, app)


@pytest.fixture
def logged_in(auth):
    """A client logged in as a merchant admin."""
    auth.create()
    response = auth.login()
    assert response.status_code == 302, response.get_data(as_text=True)
    return auth.client


@pytest.fixture
def form_post(client):
    """Post a dashboard form with the CSRF token taken from the page that shows it."""

    def post(page_url, action_url=None, data=None, **kwargs):
        token = csrf_from(client, page_url)
        return client.post(action_url or page_url, data={**(data or {}), "csrf_token": token}, **kwargs)

    return post


@pytest.fixture
def error_records():
    """``error_records("app.monitoring")``: the list of ERROR records that logger writes
    during the test (the app's loggers do not propagate, so caplog would miss them)."""
    attached = []

    def capture(logger_name="app"):
        records = []
        handler = logging.Handler(level=logging.ERROR)
        handler.emit = records.append
        logging.getLogger(logger_name).addHandler(handler)
        attached.append((logger_name, handler))
        return records

    yield capture
    for logger_name, handler in attached:
        logging.getLogger(logger_name).removeHandler(handler)


@pytest.fixture
def app_caplog(caplog):
    """caplog with the "app" logger's INFO records (it does not propagate to the root,
    where caplog listens)."""
    logger = logging.getLogger("app")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="app")
    yield caplog
    logger.removeHandler(caplog.handler)
