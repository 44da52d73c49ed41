"""SendGrid provider: the real SDK against a fake SendGrid on 127.0.0.1 — the body SendGrid
receives, each error class, timeouts and refused connections — and retry vs permanent
handling end to end through a dispatch tick.

Spec §3 (inputs: request and campaign ids travel with the message; output: the provider
reference), §6 (retryable vs permanent, bounded attempts), §3/§7 (a send whose outcome is
unknown is never retried on its own: no duplicate message)."""

import json
from datetime import timedelta

import pytest

from app import create_app
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.providers import OutgoingMessage, get_provider
from app.providers.checks import check_providers
from config import provider_config_problems
from tests.conftest import parse
from tests.factories import campaign, order_body
from tests.fake_http import refused_url
from tests.provider_helpers import production_config, provider_error, provider_fixtures

MAIL_SEND = "/v3/mail/send"


def sendgrid_settings(api):
    return {
        "EMAIL_PROVIDER": "sendgrid",
        "SENDGRID_API_KEY": "SG.test-key",
        "SENDGRID_API_HOST": api.url,
        "SENDGRID_TIMEOUT_SECONDS": 0.5,
        "EMAIL_FROM": "Mug Shop <reviews@mugs.example>",
    }


api, make_app, provider_app, run = provider_fixtures(sendgrid_settings)


def message(**fields):
    values = {
        "channel": "email",
        "to": "ada@example.com",
        "subject": "How is your mug?",
        "html": "<p>Record a video: <a href='https://shop/r/t'>here</a></p>",
        "text": "Record a video: https://shop/r/t",
        "request_id": 7,
        "campaign_id": 3,
        "slot": 1,
        "unsubscribe_url": "https://reviews.mugs.example/u/tok123",
    }
    return OutgoingMessage(**{**values, **fields})


def send(msg=None):
    return get_provider("email").send(msg or message())


# -- the message SendGrid receives ------------------------------------------------------


def test_send_posts_both_parts_custom_args_and_unsubscribe_headers(provider_app, api):
    api.reply(202, headers={"X-Message-Id": "sg-msg-1"}, path=MAIL_SEND)

    assert send() == "sg-msg-1"

    [request] = api.requests
    assert (request.method, request.path) == ("POST", MAIL_SEND)
    assert request.headers["authorization"] == "Bearer SG.test-key"
    body = request.json()
    assert body["from"] == {"email": "reviews@mugs.example", "name": "Mug Shop"}
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert body["subject"] == "How is your mug?"
    assert body["content"] == [
        {"type": "text/plain", "value": "Record a video: https://shop/r/t"},
        {"type": "text/html", "value": "<p>Record a video: <a href='https://shop/r/t'>here</a></p>"},
    ]
    # All three, as strings (a dict given to the SDK would keep only the first).
    assert body["custom_args"] == {"request_id": "7", "campaign_id": "3", "slot": "1"}
    assert body["headers"] == {
        "List-Unsubscribe": "<https://reviews.mugs.example/u/tok123>, <mailto:reviews@mugs.example?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert "mail_settings" not in body


def test_text_only_message_sandbox_mode_and_own_unsubscribe_mailbox(make_app, api):
    app = make_app(
        SENDGRID_SANDBOX=True,
        EMAIL_FROM="reviews@mugs.example",
        SHOP_NAME="Mugs & Co",
        EMAIL_UNSUBSCRIBE_MAILTO="optout@mugs.example",
    )
    api.reply(200, path=MAIL_SEND)  # sandbox mode answers 200 and has no message id
    with app.app_context():
        assert send(message(html=None)) is None
    body = api.requests[0].json()
    assert body["content"] == [{"type": "text/plain", "value": "Record a video: https://shop/r/t"}]
    assert body["from"] == {"email": "reviews@mugs.example", "name": "Mugs & Co"}
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert "<mailto:optout@mugs.example?subject=unsubscribe>" in body["headers"]["List-Unsubscribe"]


# -- error classes ----------------------------------------------------------------------

ERRORS = [
    # status, body, headers, retryable, words the merchant sees
    (
        400,
        {"errors": [{"message": "Invalid email address", "field": "personalizations.0.to.0.email"}]},
        {},
        False,
        "Invalid email address (field personalizations.0.to.0.email)",
    ),
    (
        401,
        {"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked"}]},
        {},
        False,
        "rejected the API key (401): The provided authorization grant is invalid",
    ),
    (
        403,
        {"errors": [{"message": "The from address does not match a verified Sender Identity.", "field": "from"}]},
        {},
        False,
        "does not match a verified Sender Identity. (field from)",
    ),
    (413, {"errors": [{"message": "Payload too large"}]}, {}, False, "too large for SendGrid (413): Payload too large"),
    (404, "Not Found", {}, False, "SendGrid refused the message (404): Not Found"),
    (
        429,
        {"errors": [{"message": "too many requests"}]},
        {"X-RateLimit-Reset": "1795000000"},
        True,
        "rate limit reached (429): too many requests; the limit resets at 2026-11-18 ",
    ),
    (500, {"errors": [{"message": "internal error"}]}, {}, True, "SendGrid is unavailable (500): internal error"),
    (502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}, True, "(502): <html>bad gateway</html>"),
    (503, b"", {}, True, "SendGrid is unavailable (503): Service Unavailable"),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable", "words"), ERRORS, ids=[str(case[0]) for case in ERRORS]
)
def test_http_errors_are_classified_with_sendgrids_message(provider_app, api, status, body, headers, retryable, words):
    api.reply(status, body, headers, path=MAIL_SEND)
    error = provider_error(send)
    assert error.retryable is retryable
    assert error.code == status
    assert words in error.message


def test_a_silent_server_after_the_request_is_outcome_unknown_not_retryable(provider_app, api):
    """Spec §3, §7: SendGrid got the request and may have accepted it; mail/send has no
    idempotency key, so a retry could deliver it twice: not retryable."""
    api.reply(hang=True, path=MAIL_SEND)
    error = provider_error(send)
    assert (error.retryable, error.outcome_unknown, error.code) == (False, True, "timeout")
    assert str(error).startswith("interrupted, outcome unknown [timeout]: SendGrid did not answer in time")
    assert len(api.requests) == 1  # it did reach SendGrid


def test_a_connection_dropped_after_the_request_is_outcome_unknown_not_retryable(provider_app, api):
    api.reply(drop=True, path=MAIL_SEND)
    error = provider_error(send)
    assert (error.retryable, error.outcome_unknown, error.code) == (False, True, "connection")
    assert len(api.requests) == 1


def test_connection_refused_is_retryable(make_app):
    """Nothing reached SendGrid: trying again cannot send twice."""
    with make_app(SENDGRID_API_HOST=refused_url()).app_context():
        error = provider_error(send)
    assert (error.retryable, error.outcome_unknown, error.code) == (True, False, "connection")
    assert "could not reach SendGrid" in error.message


def test_a_silent_server_is_only_transient_for_the_harmless_check(provider_app, api):
    api.reply(hang=True, path="/v3/scopes")
    [result] = check_providers(provider_app, channels=("email",))
    assert (result["ok"], result["code"], result["transient"]) == (False, "timeout", True)


def test_missing_api_key_is_a_permanent_configuration_error(make_app, api):
    with make_app(SENDGRID_API_KEY=None).app_context():
        error = provider_error(send)
    assert (error.retryable, error.code) == (False, "config")
    assert api.requests == []


# -- end to end through a dispatch tick -------------------------------------------------


def order_and_tick(provider_app, clock, run, **campaign_settings):
    created = campaign(clock, delay_days=0, **campaign_settings)
    response = provider_app.test_client().post("/webhooks/orders", json=order_body())
    assert response.status_code == 202, response.get_json()
    _, report = run("dispatch")
    [req] = db.session.scalars(db.select(TestimonialRequest)).all()
    return created, req, report


def show(run, req):
    return run("requests", "show", str(req.id))[1]


def test_tick_sends_through_sendgrid_and_keeps_the_message_id(provider_app, api, clock, run):
    api.reply(202, headers={"X-Message-Id": "Xy12Ab"}, path=MAIL_SEND)
    created, req, report = order_and_tick(provider_app, clock, run)

    assert report["sent"] == 1
    shown = show(run, req)
    assert shown["status"] == "sent"
    assert shown["email_message_id"] == "Xy12Ab"
    [sent] = [e for e in shown["events"] if e["type"] == "sent"]
    assert (sent["provider"], sent["provider_message_id"], sent["channel"]) == ("sendgrid", "Xy12Ab", "email")
    body = api.requests[0].json()
    assert body["custom_args"] == {"request_id": str(req.id), "campaign_id": str(created.id), "slot": "0"}
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert body["headers"]["List-Unsubscribe"].startswith("<http://testserver.local/u/")


def test_retryable_errors_back_off_then_fail_after_max_attempts(provider_app, api, clock, run):
    api.reply(429, {"errors": [{"message": "too many requests"}]}, path=MAIL_SEND)
    api.reply(502, path=MAIL_SEND)
    api.reply(503, path=MAIL_SEND)
    start = clock()

    _, req, report = order_and_tick(provider_app, clock, run)
    assert report["retry_scheduled"] == 1
    shown = show(run, req)
    assert (shown["status"], shown["attempts"]) == ("scheduled", 1)
    assert parse(shown["next_send_at"]) == start + timedelta(seconds=300)  # RETRY_BASE_SECONDS
    assert shown["last_error"].startswith("email: retryable [429]: SendGrid rate limit reached (429)")

    clock.advance(seconds=300)
    assert run("dispatch")[1]["retry_scheduled"] == 1
    shown = show(run, req)
    assert (shown["status"], shown["attempts"]) == ("scheduled", 2)
    assert parse(shown["next_send_at"]) == clock() + timedelta(seconds=600)  # doubled
    assert shown["last_error"].startswith("email: retryable [502]")

    clock.advance(seconds=600)
    assert run("dispatch")[1]["failed"] == 1
    shown = show(run, req)
    assert (shown["status"], shown["attempts"], shown["next_send_at"]) == ("failed", 3, None)
    assert shown["last_error"] == "email: retryable [503]: SendGrid is unavailable (503): Service Unavailable"
    failed = [e for e in shown["events"] if e["type"] == "failed"]
    assert [e["error_code"] for e in failed] == ["429", "502", "503", None]
    assert failed[-1]["detail"].startswith("request failed: gave up after 3 attempts")
    assert len(api.requests) == 3


def test_a_retry_that_succeeds_sends_once(provider_app, api, clock, run):
    api.reply(500, {"errors": [{"message": "try later"}]}, path=MAIL_SEND)
    api.reply(202, headers={"X-Message-Id": "second-try"}, path=MAIL_SEND)
    _, req, _ = order_and_tick(provider_app, clock, run)
    clock.advance(seconds=299)
    assert run("dispatch")[1]["sent"] == 0  # backoff not over yet
    clock.advance(seconds=1)
    assert run("dispatch")[1]["sent"] == 1
    shown = show(run, req)
    assert (shown["status"], shown["attempts"], shown["email_message_id"]) == ("sent", 0, "second-try")
    assert shown["last_error"] is None
    assert len(api.requests) == 2


def test_a_permanent_error_fails_at_once_with_sendgrids_message(provider_app, api, clock, run):
    reason = "The from address does not match a verified Sender Identity."
    api.reply(403, {"errors": [{"message": reason, "field": "from"}]}, path=MAIL_SEND)
    _, req, report = order_and_tick(provider_app, clock, run)

    assert report["failed"] == 1
    shown = show(run, req)
    assert (shown["status"], shown["attempts"], shown["next_send_at"]) == ("failed", 1, None)
    assert reason in shown["last_error"]
    assert shown["last_error"].startswith("email: permanent [403]")
    failed = [e for e in shown["events"] if e["type"] == "failed"]
    assert [e["error_code"] for e in failed] == ["403", None]
    assert "refused the message permanently" in failed[-1]["detail"]
    clock.advance(days=1)
    run("dispatch")
    assert len(api.requests) == 1  # never tried again on its own


def test_a_timeout_after_the_request_went_out_fails_at_once_and_only_a_person_sends_again(
    provider_app, api, clock, run
):
    """Spec §3, §7 (at most once): SendGrid may have accepted the message, so the
    dispatcher never sends it again on its own; the request fails with the reason (§6)
    and a person's Retry is the explicit action that sends it again."""
    api.reply(hang=True, path=MAIL_SEND)
    _, req, report = order_and_tick(provider_app, clock, run)

    assert (report["failed"], report["retry_scheduled"]) == (1, 0)
    shown = show(run, req)
    assert (shown["status"], shown["attempts"], shown["next_send_at"]) == ("failed", 1, None)
    assert shown["last_error"].startswith("email: interrupted, outcome unknown [timeout]: SendGrid did not answer")
    failed = [e for e in shown["events"] if e["type"] == "failed"]
    assert [e["error_code"] for e in failed] == ["timeout", None]
    assert failed[-1]["detail"] == "request failed: interrupted, outcome unknown; use Retry to send again"
    clock.advance(days=2)
    run("dispatch")
    assert len(api.requests) == 1  # never re-sent on its own

    run("requests", "retry", str(req.id))
    api.reply(202, headers={"X-Message-Id": "after-retry"}, path=MAIL_SEND)
    assert run("dispatch")[1]["sent"] == 1
    assert len(api.requests) == 2
    assert show(run, req)["email_message_id"] == "after-retry"


def test_connection_refused_in_a_tick_schedules_a_retry(make_app, clock):
    app = make_app(SENDGRID_API_HOST=refused_url())
    with app.app_context():
        campaign(clock, delay_days=0)
        app.test_client().post("/webhooks/orders", json=order_body())
        result = app.test_cli_runner().invoke(args=["dispatch", "--json"])
        assert json.loads(result.stdout)["retry_scheduled"] == 1
        req = db.session.scalars(db.select(TestimonialRequest)).one()
        assert req.status == "scheduled"
        assert req.last_error.startswith("email: retryable [connection]: could not reach SendGrid")


# -- provider check ---------------------------------------------------------------------


def test_check_passes_with_the_mail_send_scope(provider_app, api, run):
    api.reply(200, {"scopes": ["mail.send", "alerts.read"]}, method="GET", path="/v3/scopes")
    code, results = run("providers", "check", "--channel", "email")
    assert code == 0
    [email] = results
    assert (email["channel"], email["provider"], email["ok"]) == ("email", "sendgrid", True)
    assert "mail.send" in email["detail"]
    assert api.requests[0].headers["authorization"] == "Bearer SG.test-key"


@pytest.mark.parametrize(
    ("status", "body", "code", "transient", "words"),
    [
        (200, {"scopes": ["alerts.read"]}, "scope", False, "lacks the mail.send scope"),
        (401, {"errors": [{"message": "authorization required"}]}, 401, False, "rejected the API key"),
        (403, {"errors": [{"message": "access forbidden"}]}, 403, False, "access forbidden"),
        (429, {"errors": [{"message": "too many requests"}]}, 429, True, "rate limit"),
        (503, b"", 503, True, "unavailable"),
    ],
)
def test_check_reports_each_problem_and_exits_non_zero(provider_app, api, run, status, body, code, transient, words):
    api.reply(status, body, path="/v3/scopes")
    exit_code, [email] = run("providers", "check", "--channel", "email", ok=False)
    assert exit_code == 1
    assert (email["ok"], email["code"], email["transient"]) == (False, code, transient)
    assert words in email["detail"]


def test_check_without_a_sender_or_reachable_api(make_app, api):
    from config import DEFAULT_EMAIL_FROM

    no_sender = make_app(EMAIL_FROM=DEFAULT_EMAIL_FROM)
    [email] = check_providers(no_sender, ("email",))
    assert (email["ok"], email["code"]) == (False, "config")
    assert "EMAIL_FROM" in email["detail"]

    unreachable = make_app(SENDGRID_API_HOST=refused_url())
    [email] = check_providers(unreachable, ("email",))
    assert (email["ok"], email["code"], email["transient"]) == (False, "connection", True)
    assert api.requests == []


def test_human_check_output_and_outbox_sms(provider_app, api):
    api.reply(200, {"scopes": ["mail.send"]}, path="/v3/scopes")
    result = provider_app.test_cli_runner().invoke(args=["providers", "check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("email sendgrid OK: API key accepted")
    assert lines[1].startswith("sms   outbox   OK: outbox provider")


# -- configuration ----------------------------------------------------------------------


def test_production_refuses_sendgrid_without_credentials(tmp_path):
    config = production_config(
        tmp_path, EMAIL_PROVIDER="sendgrid", SENDGRID_API_KEY=None, EMAIL_FROM="reviews@shop.example"
    )
    with pytest.raises(RuntimeError) as caught:
        create_app(config)
    assert "EMAIL_PROVIDER=sendgrid needs SENDGRID_API_KEY" in str(caught.value)
    assert "EMAIL_PROVIDER=sendgrid needs EMAIL_FROM" in str(caught.value)


def test_provider_configuration_problems():
    fine = {
        "EMAIL_PROVIDER": "sendgrid",
        "SMS_PROVIDER": "outbox",
        "SENDGRID_API_KEY": "SG.x",
        "EMAIL_FROM": "reviews@mugs.example",
    }
    assert provider_config_problems(fine) == []
    assert provider_config_problems({**fine, "EMAIL_PROVIDER": "sendgird"}) == [
        "EMAIL_PROVIDER='sendgird' is not a known email provider (outbox, sendgrid)"
    ]
    assert provider_config_problems({**fine, "SMS_PROVIDER": "sendgrid"}) == [
        "SMS_PROVIDER='sendgrid' is not a known SMS provider (outbox, twilio)"
    ]
