"""Access: every dashboard page needs a login; webhooks and customer pages do not."""

import pytest

from app.auth.models import Admin
from app.extensions import db


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_merchant_logs_in_and_sees_the_dashboard(auth):
    auth.create()
    response = auth.login()
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = auth.client.get("/")
    assert page.status_code == 200
    assert "merchant@shop.example" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("merchant@shop.example", "wrong password!"),
        ("nobody@shop.example", "correct horse battery"),
    ],
)
def test_wrong_credentials_are_refused(auth, email, password):
    auth.create()
    response = auth.login(email, password)
    assert response.status_code == 200
    assert "Email or password is not right." in response.get_data(as_text=True)
    assert auth.client.get("/").status_code == 302


def test_login_form_without_csrf_token_is_rejected(auth):
    auth.create()
    response = auth.client.post("/login", data={"email": "merchant@shop.example", "password": "correct horse battery"})
    assert response.status_code == 400
    assert auth.client.get("/").status_code == 302


def test_login_never_redirects_to_another_site(auth):
    auth.create()
    from tests.conftest import csrf_from

    token = csrf_from(auth.client, "/login")
    response = auth.client.post(
        "/login?next=https://evil.example/",
        data={"email": "merchant@shop.example", "password": "correct horse battery", "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_logout_ends_the_session(logged_in, auth):
    assert auth.logout().status_code == 302
    assert logged_in.get("/").status_code == 302


def test_admins_create_stores_a_strong_hash_never_the_password(app_factory):
    from config import Config

    real = app_factory(PASSWORD_HASH_METHOD=Config.PASSWORD_HASH_METHOD)  # the tests' own is cheap
    result = real.test_cli_runner().invoke(
        args=["admins", "create", "owner@shop.example"], input="a long enough secret\na long enough secret\n"
    )
    assert result.exit_code == 0, result.output
    with real.app_context():
        admin = db.session.query(Admin).one()
        assert admin.password_hash.startswith("scrypt:32768:8:1$")  # werkzeug's full cost
        assert admin.check_password("a long enough secret")
    assert "a long enough secret" not in admin.password_hash


def test_admins_create_refuses_a_short_password(app, runner):
    result = runner.invoke(args=["admins", "create", "owner@shop.example"], input="short\nshort\n")
    assert result.exit_code != 0
    assert "at least 10 characters" in result.output
    assert db.session.query(Admin).count() == 0
