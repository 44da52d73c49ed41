"""Revision 0013 on SQLite: failures recorded as sentences become fields, and back."""

from app import create_app
from app.extensions import db
from tests.conftest import make_config
from tests.lifecycle.failure_migration import run_backfill_round_trip


def test_old_failure_sentences_become_fields_and_come_back_on_downgrade(tmp_path):
    app = create_app(make_config(tmp_path, tmp_path / "old.db"))
    with app.app_context():
        try:
            run_backfill_round_trip(app)
        finally:
            db.session.remove()
            db.engine.dispose()
