"""PostgreSQL fixtures: the same ``app`` / ``client`` / ``cli`` fixtures as tests/conftest.py,
on a fresh PostgreSQL database per test instead of a SQLite file.

`make test` starts a throwaway cluster on 127.0.0.1 and sets TEST_POSTGRES_URL (a URL of a
server where the tests may create and drop databases); without it these tests are skipped.
Migrations run once per session into a template database (``flask_migrate.upgrade()``,
never create_all); each test gets ``CREATE DATABASE … TEMPLATE`` of it, dropped afterwards.
"""

import os
import re
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from tests.conftest import make_config

SKIP_REASON = (
    "TEST_POSTGRES_URL is not set: `make test` starts a throwaway PostgreSQL and sets it "
    "(or set it yourself to a server where the tests may create databases)"
)
NAME_RE = re.compile(r"^(?:tmpl|t)_(\d+)_[0-9a-f]{8}$")


class PostgresServer:
    """Creates and drops the tests' databases (names carry the pytest process id)."""

    def __init__(self, url):
        self.base_url = url
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT")

    def url(self, name):
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def new_name(self, prefix):
        return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    def create(self, name, template=None):
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop(self, name):
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_leftovers(self):
        """Databases of earlier runs that were killed before their teardown (the cluster is reused)."""
        with self.admin.connect() as conn:
            names = conn.execute(text("SELECT datname FROM pg_database WHERE NOT datistemplate")).scalars().all()
        for name in names:
            match = NAME_RE.match(name)
            if match and not _alive(int(match.group(1))):
                self.drop(name)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def pg():
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip(SKIP_REASON)
    server = PostgresServer(make_url(url))
    server.drop_leftovers()
    yield server
    server.admin.dispose()


@pytest.fixture(scope="session")
def pg_template(pg, tmp_path_factory):
    """A database built by `flask db upgrade` (Alembic), the template of every test's database."""
    from flask_migrate import upgrade

    name = pg.create(pg.new_name("tmpl"))
    app = create_app(make_config(tmp_path_factory.mktemp("pg"), None, SQLALCHEMY_DATABASE_URI=pg.url(name)))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield name
    pg.drop(name)


@pytest.fixture
def pg_database(pg):
    """Creates empty databases (``pg_database()``) or copies of a template; all dropped after the test."""
    names = []

    def create(template=None):
        names.append(pg.create(pg.new_name("t"), template))
        return pg.url(names[-1])

    yield create
    for name in names:
        pg.drop(name)


@pytest.fixture
def database_url(pg_database, pg_template):
    """A fresh copy of the migrated PostgreSQL template: tests/conftest.py's app_factory,
    app, client, cli… then run on PostgreSQL."""
    return pg_database(pg_template)
