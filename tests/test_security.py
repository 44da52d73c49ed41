"""What a hostile run found (issue 9): the signing key, login throttling, sessions and
cookies, security headers, and what production refuses to start without."""

import logging
import os
import stat

import pytest
from flask import Flask

from app import create_app
from app.extensions import db
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


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (None, "SECRET_KEY must be set"),
        ("", "SECRET_KEY must be set"),
        ("a" * 31, "SECRET_KEY must be at least 32 characters (got 31)"),
        ("dev-only-insecure-secret-key", "SECRET_KEY is a well-known placeholder"),
        ("changeme", "SECRET_KEY is a well-known placeholder"),
        ("CHANGEME-changeme-changeme-changeme", "SECRET_KEY is a well-known placeholder"),
    ],
)
def test_production_refuses_a_missing_short_or_placeholder_key_naming_the_variable(tmp_path, database_url, key, words):
    config = make_config(
        tmp_path,
        None,
        SQLALCHEMY_DATABASE_URI=database_url,
        **{**PRODUCTION, "SECRET_KEY": key},
        SECRET_KEY_FILE=str(tmp_path / "never-made"),
    )
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
    assert any(
        "SECRET_KEY is short or a well-known placeholder" in r.getMessage() and r.levelno == logging.WARNING
        for r in app_caplog.records
    )


# -- 4. login throttling ----------------------------------------------------------------------


def wrong_login(auth, email="merchant@shop.example", address="203.0.113.7"):
    from tests.conftest import csrf_from

    token = csrf_from(auth.client, "/login")
    return auth.client.post(
        "/login",
        data={"email": email, "password": "not the password", "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_the_eleventh_wrong_password_in_a_minute_gets_429_with_retry_after(auth):
    # Failed before the fix: 60 wrong passwords in a row all answered 200.
    auth.create()
    for _ in range(10):
        assert wrong_login(auth).status_code == 200
    refused = wrong_login(auth)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    page = refused.get_data(as_text=True)
    assert "Too many failed log-ins" in page and "Wait a minute" in page and "Traceback" not in page
    # The right password waits too: the account is what is being guessed.
    assert auth.login().status_code == 429
    # The page itself still shows, so the merchant can read why.
    assert auth.client.get("/login").status_code == 200


def test_the_account_limit_holds_across_addresses_and_the_address_limit_across_accounts(auth):
    auth.create()
    for n in range(10):
        assert wrong_login(auth, address=f"198.51.100.{n}").status_code == 200
    assert wrong_login(auth, address="198.51.100.99").status_code == 429
    for n in range(10):
        assert wrong_login(auth, email=f"guess{n}@shop.example", address="192.0.2.1").status_code == 200
    assert wrong_login(auth, email="guess99@shop.example", address="192.0.2.1").status_code == 429
    # Another address and another account are not held up.
    assert wrong_login(auth, email="other@shop.example", address="192.0.2.2").status_code == 200


def test_successful_logins_are_not_counted(auth):
    auth.create()
    for _ in range(15):
        assert auth.login().status_code == 302
        auth.logout()


def test_each_app_starts_with_empty_counters(app_factory):
    for _ in range(2):
        app = app_factory()
        auth = AuthActions(app.test_client(), app)
        for _ in range(10):
            assert wrong_login(auth).status_code == 200


def test_an_unknown_email_costs_the_same_password_hash_work_as_a_known_one(auth, monkeypatch):
    # Failed before the fix: an unknown email answered in 11 ms, a known one in 151 ms
    # (no scrypt at all for an unknown one). Counted, not timed.
    import hashlib

    auth.create()
    wrong_login(auth, email="warm-up@shop.example")
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    wrong_login(auth, email="merchant@shop.example")
    known = len(calls)
    wrong_login(auth, email="nobody@shop.example")
    assert known == 1 and len(calls) - known == 1


# -- 5. sessions and cookies -------------------------------------------------------------------


def session_cookie(client):
    return client.get_cookie("session").value


def replay(app, cookie):
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other.get("/requests/")


@pytest.fixture
def site(app_factory):
    """An app without a pushed context: every test client is its own browser (with the
    fixture ``app``'s context pushed, they would share the logged-in user in ``g``)."""
    app = app_factory()
    auth = AuthActions(app.test_client(), app)
    auth.create()
    return app, auth


def test_a_session_cookie_replayed_after_logout_gets_the_login_page(site):
    # Failed before the fix: the copied cookie still opened the dashboard after logout.
    app, auth = site
    auth.login()
    copied = session_cookie(auth.client)
    assert replay(app, copied).status_code == 200
    auth.logout()
    response = replay(app, copied)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert auth.login().status_code == 302  # logging in again works


def test_changing_the_password_logs_out_every_other_session_and_keeps_this_one(site):
    from tests.conftest import csrf_from

    app, auth = site
    other_browser = app.test_client()
    AuthActions(other_browser, app).login()
    auth.login()

    page = auth.client.get("/account/password")
    assert page.status_code == 200 and "Change your password" in page.get_data(as_text=True)
    token = csrf_from(auth.client, "/account/password")

    def change(current, new, confirm):
        return auth.client.post(
            "/account/password",
            data={"current_password": current, "new_password": new, "confirm": confirm, "csrf_token": token},
        )

    assert "This is not your current password." in change(
        "wrong one!!", "a new long password", "a new long password"
    ).get_data(as_text=True)
    assert "The two new passwords differ." in change(
        "correct horse battery", "a new long password", "another one!!"
    ).get_data(as_text=True)
    assert "at least 10" in change("correct horse battery", "short", "short").get_data(as_text=True)
    assert other_browser.get("/").status_code == 200  # nothing changed yet

    done = change("correct horse battery", "a new long password", "a new long password")
    assert done.status_code == 302
    assert auth.client.get("/").status_code == 200  # this browser stays logged in
    assert other_browser.get("/").status_code == 302
    fresh = AuthActions(app.test_client(), app)
    assert fresh.login(password="correct horse battery").status_code == 200  # refused
    assert fresh.login(password="a new long password").status_code == 302


def test_flask_admins_set_password_ends_the_admins_sessions(site):
    app, auth = site
    runner = app.test_cli_runner()
    auth.login()
    result = runner.invoke(
        args=["admins", "set-password", "Merchant@Shop.example"], input="the replacement pw\nthe replacement pw\n"
    )
    assert result.exit_code == 0, result.output
    assert "sessions are logged out" in result.output
    assert auth.client.get("/").status_code == 302
    assert AuthActions(app.test_client(), app).login(password="the replacement pw").status_code == 302

    unknown = runner.invoke(
        args=["admins", "set-password", "nobody@shop.example"], input="x" * 12 + "\n" + "x" * 12 + "\n"
    )
    assert unknown.exit_code != 0 and "no admin with email 'nobody@shop.example'" in unknown.output
    short = runner.invoke(args=["admins", "set-password", "merchant@shop.example"], input="short\nshort\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output


@pytest.mark.parametrize("user_id", ["1", "1.x", "x.0", "1.99", "99999999999.0", "", "1.0.0"])
def test_a_session_with_a_malformed_or_old_user_id_is_logged_out(site, user_id):
    app, _ = site
    client = app.test_client()
    client.set_cookie("session", forged_session_cookie(app.config["SECRET_KEY"], user_id))
    assert client.get("/").status_code == 302


def test_production_cookies_are_secure(tmp_path, database_url):
    # Failed before the fix: production's session cookie had no Secure flag.
    from tests.provider_helpers import production_config

    app = create_app(production_config(tmp_path, SQLALCHEMY_DATABASE_URI=database_url, TESTING=True))
    response = app.test_client().get("/login", base_url="https://shop.example")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


# -- 9. the scheduler starts only in a serving process ------------------------------------------


def flask_cli(tmp_path, *args, timeout=60, until=None):
    """Run the flask command line in a child process on a database of its own; returns its
    log (stderr). With ``until``, stops the child once that text appears (a server)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SECRET_KEY": "k" * 40,
        "SCHEDULER_INTERVAL_SECONDS": "3600",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "APP_ENV": "",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=root,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if until is None:
        return child.communicate(timeout=timeout)[1]
    import threading

    lines, seen = [], threading.Event()

    def read():
        for line in child.stderr:
            lines.append(line)
            if until in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        seen.wait(timeout=timeout)
    finally:
        child.terminate()
        child.wait(timeout=30)
        reader.join(timeout=10)
        child.stderr.close()
    return "".join(lines)


@pytest.mark.parametrize(
    "args",
    [("--app", "wsgi", "dispatch", "--help"), ("--app", "wsgi", "routes"), ("--app", "app", "dispatch", "--help")],
)
def test_a_flask_command_other_than_run_never_starts_the_scheduler(tmp_path, args):
    # Failed before the fix for --app wsgi: the command started the scheduler, which ran a
    # tick inside the CLI process against the (unmigrated) database and logged tracebacks.
    log = flask_cli(tmp_path, *args)
    assert "scheduler started" not in log and "Traceback" not in log, log


@pytest.mark.parametrize("app_module", ["wsgi", "app"])
def test_flask_run_starts_the_scheduler(tmp_path, app_module):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = flask_cli(tmp_path, "--app", app_module, "run", "--port", str(port), until="scheduler started", timeout=20)
    assert "scheduler started" in log, log


# -- 6. security headers -----------------------------------------------------------------------


def directives(response):
    csp = response.headers["Content-Security-Policy"]
    return dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())


def test_every_dashboard_page_webhook_answer_and_error_carries_the_headers(logged_in, client, clock):
    # Failed before the fix: no Content-Security-Policy, X-Frame-Options, nosniff or
    # Referrer-Policy on any response.
    from tests.factories import create_request, post_order

    create_request(client, clock)
    answers = [
        logged_in.get(path)
        for path in (
            "/",
            "/requests/",
            "/campaigns/",
            "/templates/",
            "/intake/",
            "/testimonials/",
            "/requests/export.csv",
            "/no-such-page",
        )
    ]
    static = client.get("/static/app.css")
    static.close()
    answers += [post_order(client, b"{}"), static]
    for response in answers:
        where = f"{response.request.path} → {response.status_code}"
        policy = directives(response)
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'", where
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'", where
        assert response.headers["X-Frame-Options"] == "DENY", where
        assert response.headers["X-Content-Type-Options"] == "nosniff", where
        assert response.headers["Referrer-Policy"] == "same-origin", where
        assert "camera=()" in response.headers["Permissions-Policy"], where
        assert "Strict-Transport-Security" not in response.headers, where  # not production
    for response in answers:
        # The CSV export streams inside its request context: a response left open is
        # finalised by the garbage collector later, popping that context in another test.
        response.close()


def test_no_page_carries_an_inline_script(logged_in, client, clock):
    import re

    from tests.factories import create_request, request_row

    request_id = create_request(client, clock)
    token = request_row(request_id).token
    pages = [
        "/",
        "/requests/",
        f"/requests/{request_id}",
        "/campaigns/",
        "/campaigns/new",
        "/templates/",
        "/templates/new",
        "/opt-outs/",
        "/intake/",
        "/testimonials/",
        "/account/password",
    ]
    for path in pages:
        html = logged_in.get(path).get_data(as_text=True)
        inline = [tag for tag in re.findall(r"<script\b[^>]*>", html) if "src=" not in tag]
        handlers = re.findall(r"<[^>]+\son[a-z]+\s*=", html)
        assert not inline and not handlers, (path, inline, handlers[:3])
    assert "<script>" not in client.get(f"/r/{token}").get_data(as_text=True)


def test_the_recording_page_may_use_the_camera_and_no_other_page_may(client, clock):
    from tests.factories import create_request, request_row

    token = request_row(create_request(client, clock)).token
    page = client.get(f"/r/{token}")
    assert page.status_code == 200
    assert "camera=(self)" in page.headers["Permissions-Policy"]
    assert "microphone=(self)" in page.headers["Permissions-Policy"]
    policy = directives(page)
    assert policy["media-src"] == "'self' blob:" and "blob:" in policy["img-src"]
    assert page.headers["Referrer-Policy"] in ("same-origin", "no-referrer")  # the token never leaves
    assert "camera=()" in client.get("/login").headers["Permissions-Policy"]


def test_production_adds_hsts(tmp_path, database_url):
    from tests.provider_helpers import production_config

    app = create_app(production_config(tmp_path, SQLALCHEMY_DATABASE_URI=database_url, TESTING=True))
    assert app.test_client().get("/login").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_route_or_blueprint_can_change_its_policy(app_factory):
    """The hooks other pages use: an embeddable page names who may frame it (then no
    X-Frame-Options), a blueprint loosens one directive for all its routes."""
    from flask import Blueprint

    from app.security import blueprint_security, content_security

    app = app_factory()
    embed = Blueprint("embed_test", __name__)
    blueprint_security(embed, csp={"img_src": "'self' blob:"})

    @embed.get("/embed-test/page")
    @content_security(frame_ancestors=lambda: "'self' https://shop.example")
    def page():
        return "framed"

    @embed.get("/embed-test/other")
    def other():
        return "plain"

    app.register_blueprint(embed)
    client = app.test_client()
    framed = client.get("/embed-test/page")
    assert directives(framed)["frame-ancestors"] == "'self' https://shop.example"
    assert directives(framed)["img-src"] == "'self' blob:"
    assert "X-Frame-Options" not in framed.headers
    plain = client.get("/embed-test/other")
    assert directives(plain)["frame-ancestors"] == "'none'" and plain.headers["X-Frame-Options"] == "DENY"
    assert directives(plain)["img-src"] == "'self' blob:"


def test_behind_a_trusted_proxy_each_client_address_has_its_own_login_limit(app_factory):
    app = app_factory(TRUSTED_PROXIES=1)
    auth = AuthActions(app.test_client(), app)
    auth.create()
    from tests.conftest import csrf_from

    def wrong(client_address, email):
        token = csrf_from(auth.client, "/login")
        return auth.client.post(
            "/login",
            data={"email": email, "password": "nope nope", "csrf_token": token},
            headers={"X-Forwarded-For": client_address},
        )

    for n in range(10):
        assert wrong("198.51.100.1", f"a{n}@shop.example").status_code == 200
    assert wrong("198.51.100.1", "a99@shop.example").status_code == 429
    assert wrong("198.51.100.2", "b@shop.example").status_code == 200  # another customer of the proxy


def test_an_uploaded_video_is_served_to_admins_inert_with_its_checked_type(logged_in, client, clock):
    import io

    from app.testimonials.models import Testimonial
    from tests.factories import create_request, request_row, submit_testimonial
    from tests.public.test_customer_link import MP4

    token = request_row(create_request(client, clock)).token
    assert submit_testimonial(client, token, video=(io.BytesIO(MP4), "clip.mp4", "video/mp4")).status_code == 200
    testimonial = db.session.scalars(db.select(Testimonial)).one()
    served = logged_in.get(f"/testimonials/{testimonial.id}/video")
    served.close()
    assert served.status_code in (200, 206) and served.headers["Content-Type"] == "video/mp4"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    # A stored type that is not a video we accept is never served as itself (e.g. HTML).
    testimonial.video_content_type = "text/html"
    db.session.commit()
    served = logged_in.get(f"/testimonials/{testimonial.id}/video")
    served.close()
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment")
