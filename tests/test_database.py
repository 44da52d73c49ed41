"""SQLite's durability setting: every connection of the app uses the configured one, and
the default waits for the disk at each commit (a claim is on disk before the provider call)."""

import pytest
from sqlalchemy import text

from app import create_app
from app.extensions import db
from config import Config
from tests.conftest import make_config

# PRAGMA synchronous answers with a number
LEVELS = {"NORMAL": 1, "FULL": 2}


def synchronous_of(app):
    with app.app_context():
        with db.engine.connect() as connection:
            level = connection.execute(text("PRAGMA synchronous")).scalar()
        db.engine.dispose()
    return level


def test_the_default_is_full():
    assert Config.SQLITE_SYNCHRONOUS == "FULL"


@pytest.mark.parametrize("setting", ["FULL", "NORMAL"])
def test_every_connection_uses_the_configured_setting(tmp_path, setting):
    app = create_app(make_config(tmp_path, tmp_path / "x.db", SQLITE_SYNCHRONOUS=setting))
    assert synchronous_of(app) == LEVELS[setting]


def test_a_setting_sqlite_would_take_but_we_do_not_offer_refuses_to_start(tmp_path):
    with pytest.raises(ValueError, match="SQLITE_SYNCHRONOUS must be FULL or NORMAL, got 'OFF'"):
        app = create_app(make_config(tmp_path, tmp_path / "x.db", SQLITE_SYNCHRONOUS="OFF"))
        synchronous_of(app)
