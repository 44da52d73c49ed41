"""The migrations on PostgreSQL: upgrade to head, downgrade to base leaving nothing behind
(tables, functions, triggers, types), upgrade again; and no drift between the models and
the migrated schema (`flask db check`)."""

import pytest
from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app import create_app
from app.extensions import db
from tests.conftest import make_config

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_app(pg_database, tmp_path):
    """An app on an empty PostgreSQL database, app context pushed."""
    app = create_app(make_config(tmp_path, None, SQLALCHEMY_DATABASE_URI=pg_database()))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def head_revision():
    return ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config()).get_current_head()


def schema():
    """Everything a migration can leave in the public schema, by kind."""
    db.session.rollback()
    queries = {
        "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        "indexes": "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'",
        "sequences": "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'",
        "functions": "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public'",
        "triggers": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
        "types": "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')",
        "views": "SELECT viewname FROM pg_views WHERE schemaname = 'public'",
    }
    found = {kind: set(db.session.execute(text(sql)).scalars()) for kind, sql in queries.items()}
    db.session.rollback()
    return found


def current_revision():
    db.session.rollback()
    revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    db.session.rollback()
    return revision


def test_upgrade_to_head_then_downgrade_to_base_leaves_nothing_and_upgrades_again(empty_app):
    upgrade()

    assert current_revision() == head_revision()
    at_head = schema()
    assert set(db.metadata.tables) <= at_head["tables"]  # every model has its table

    downgrade(revision="base")

    assert current_revision() is None
    assert schema() == {
        "tables": {"alembic_version"},
        "indexes": {"alembic_version_pkc"},
        "sequences": set(),
        "functions": set(),
        "triggers": set(),
        "types": set(),
        "views": set(),
    }

    upgrade()  # fails on anything the downgrade left behind (a type, a function …)

    assert current_revision() == head_revision()
    assert schema() == at_head


def test_each_revision_downgrades_and_upgrades_again_one_step_at_a_time(empty_app):
    upgrade()
    script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    revisions = [r.revision for r in script.walk_revisions()]  # head first
    for revision in revisions:
        before = schema()
        downgrade(revision="-1")
        upgrade(revision=revision)
        assert schema() == before, f"down and up again at {revision} changed the schema"
        downgrade(revision="-1")
    assert current_revision() is None


def test_flask_db_check_finds_no_drift_between_the_models_and_the_migrations(app):
    runner = app.test_cli_runner()

    result = runner.invoke(args=["db", "check"])

    assert result.exit_code == 0, result.output
    # … and the check does see a difference when there is one.
    db.session.execute(text("CREATE TABLE stray_table (id integer PRIMARY KEY)"))
    db.session.commit()
    assert runner.invoke(args=["db", "check"]).exit_code == 1


def test_old_failure_sentences_become_fields_and_come_back_on_downgrade(empty_app):
    from tests.lifecycle.failure_migration import run_backfill_round_trip

    run_backfill_round_trip(empty_app)
