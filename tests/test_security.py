"""What a hostile run found (issue 9): the signing key, login throttling, sessions and
cookies, security headers, and what production refuses to start without."""

import logging
import os
import stat

import pytest
from flask import Flask

from app import create_app
from app.secret_key import PLACEHOLDERS
from config import Config
from tests.conftest import AuthActions, make_config
from tests.events_helpers import PRODUCTION


def forged_session_cookie(key, admin_id="1"):
    """A Flask-Login session for ``admin_id``, signed the way Flask signs sessions."""
    signer = Flask("forger")
    signer.secret_key = key
    return signer.session_interface.get_signing_serializer(signer).dumps({"_user_id": admin_id, "_fresh": True})


# -- 1. no built-in signing key -------------------------------------------------------------


@pytest.mark.parametrize("key", ["dev-only-insecure-secret-key", "changeme", "secret", "dev", "test-secret"])
def test_a_session_forged_with_a_built_in_or_placeholder_key_gets_the_login_page(app_factory, tmp_path, key):
    # Failed before the fix: with SECRET_KEY unset the app signed with the public
    # "dev-only-insecure-secret-key", and this cookie read the customers' emails.
    assert not os.environ.get("SECRET_KEY"), "this test is about the key used when SECRET_KEY is not set"
    # The default configuration's key, as a merchant who sets nothing gets it.
    app = app_factory(SECRET_KEY=Config.SECRET_KEY, SECRET_KEY_FILE=str(tmp_path / "instance" / "secret-key"))

    AuthActions(app.test_client(), app).create()
    client = app.test_client()
    client.set_cookie("session", forged_session_cookie(key))
    for path in ("/requests/", "/requests/export.csv", "/"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path


def test_an_unset_key_is_generated_once_kept_private_and_shared_by_the_next_start(app_factory, tmp_path, app_caplog):
    key_file = tmp_path / "instance" / "secret-key"
    first = app_factory(SECRET_KEY=None, SECRET_KEY_FILE=str(key_file))
    second = app_factory(SECRET_KEY=None, SECRET_KEY_FILE=str(key_file))

    key = first.config["SECRET_KEY"]
    assert len(key) == 64 and key == second.config["SECRET_KEY"] == key_file.read_text().strip()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    said = [r.getMessage() for r in app_caplog.records if "generated a random one" in r.getMessage()]
    assert len(said) == 1 and str(key_file) in said[0]
    assert sorted(os.listdir(key_file.parent)) == ["secret-key"]  # no temporary file left behind
    # A session signed by one process is valid in the next (or the restarted) one.
    auth = AuthActions(first.test_client(), first)
    auth.create()
    assert auth.login().status_code == 302
    cookie = auth.client.get_cookie("session").value
    other = second.test_client()
    other.set_cookie("session", cookie)
    assert other.get("/").status_code == 200


def test_a_second_installation_gets_its_own_key(app_factory, tmp_path):
    one = app_factory(SECRET_KEY=None, SECRET_KEY_FILE=str(tmp_path / "a" / "secret-key"))
    two = app_factory(SECRET_KEY=None, SECRET_KEY_FILE=str(tmp_path / "b" / "secret-key"))
    assert one.config["SECRET_KEY"] != two.config["SECRET_KEY"]


@pytest.mark.parametrize(("key", "words"), [
    (None, "SECRET_KEY must be set"),
    ("", "SECRET_KEY must be set"),
    ("a" * 31, "SECRET_KEY must be at least 32 characters (got 31)"),
    ("dev-only-insecure-secret-key", "SECRET_KEY is a well-known placeholder"),
    ("changeme", "SECRET_KEY is a well-known placeholder"),
    ("CHANGEME-changeme-changeme-changeme", "SECRET_KEY is a well-known placeholder"),
])
def test_production_refuses_a_missing_short_or_placeholder_key_naming_the_variable(tmp_path, database_url, key,
                                                                                  words):
    config = make_config(tmp_path, None, SQLALCHEMY_DATABASE_URI=database_url, **{**PRODUCTION, "SECRET_KEY": key},
                         SECRET_KEY_FILE=str(tmp_path / "never-made"))
    with pytest.raises(RuntimeError, match="refusing to start in production") as refused:
        create_app(config)
    assert words in str(refused.value)
    assert not (tmp_path / "never-made").exists()  # production never makes up a key


def test_every_placeholder_is_refused_in_production():
    from app.secret_key import production_key_problem

    assert all(production_key_problem(p) for p in PLACEHOLDERS)
    assert production_key_problem("k" * 20 + "9f8e7d6c5b4a3210") is None


def test_outside_production_a_short_key_is_warned_about(app_factory, app_caplog):
    app_factory(TESTING=False, SECRET_KEY="changeme")
    assert any("SECRET_KEY is short or a well-known placeholder" in r.getMessage() and r.levelno == logging.WARNING
               for r in app_caplog.records)
