"""The command line contract (README, "Command line"): plural nouns, ``--json`` prints only JSON on stdout
(an array for list, an object for show/create/update/dispatch), clear errors with a non-zero
exit code, and nothing written by a refused command."""

import json

import pytest
from sqlalchemy import select

from app.campaigns.models import MessageTemplate
from app.extensions import db
from app.lifecycle.heartbeat import DispatchTick
from tests.factories import campaign, create_request, order_body, post_order, request_row, row_counts

REQUEST_FIELDS = {
    "id",
    "campaign_id",
    "order_id",
    "item_id",
    "product_id",
    "channel",
    "status",
    "reminder_count",
    "next_send_at",
    "sent_at",
    "clicked_at",
    "submitted_at",
    "expires_at",
    "attempts",
    "last_error",
    "link",
}
EVENT_FIELDS = {"type", "channel", "slot", "occurred_at", "provider", "provider_message_id", "detail"}
OUTBOX_FIELDS = {"id", "request_id", "channel", "to", "subject", "text", "html", "slot", "created_at"}


def run_json(runner, *args):
    """Run with --json; stdout must be exactly one JSON document."""
    result = runner.invoke(args=[*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(runner, *args):
    result = runner.invoke(args=list(args))
    assert result.exit_code != 0, result.output
    assert result.stdout.strip() == "" or not result.stdout.lstrip().startswith(("{", "[")), result.stdout
    return result.stderr


# -- campaigns -------------------------------------------------------------------------------


def test_campaign_create_with_defaults(runner):
    created = run_json(runner, "campaigns", "create", "--name", "Video reviews")

    assert isinstance(created, dict) and isinstance(created["id"], int)
    assert {
        k: created[k]
        for k in (
            "name",
            "trigger",
            "delay_days",
            "channel",
            "reminder_enabled",
            "reminder_delay_days",
            "max_reminders",
            "expire_after_days",
            "status",
        )
    } == {
        "name": "Video reviews",
        "trigger": "delivered",
        "delay_days": 3,
        "channel": "email",
        "reminder_enabled": True,
        "reminder_delay_days": 4,
        "max_reminders": 2,
        "expire_after_days": 30,
        "status": "active",
    }
    defaults = {
        f"{t.channel}_{t.kind}": t.id
        for t in db.session.scalars(select(MessageTemplate).where(MessageTemplate.is_default))
    }
    assert set(defaults) == {"email_initial", "email_reminder", "sms_initial", "sms_reminder"}
    assert created["templates"] == defaults


def test_campaign_create_with_every_option(runner):
    created = run_json(
        runner,
        "campaigns",
        "create",
        "--name",
        "VIP",
        "--trigger",
        "fulfilled",
        "--delay-days",
        "7",
        "--channel",
        "both",
        "--no-reminders",
        "--reminder-delay-days",
        "5",
        "--max-reminders",
        "1",
        "--expire-after-days",
        "14",
        "--include-product",
        "p_1",
        "--include-product",
        "SKU-2",
        "--exclude-product",
        "p_9",
        "--min-order-total",
        "25.5",
        "--exclude-tag",
        "wholesale",
        "--exclude-tag",
        "staff",
        "--status",
        "draft",
    )
    assert {
        k: created[k]
        for k in (
            "trigger",
            "delay_days",
            "channel",
            "reminder_enabled",
            "reminder_delay_days",
            "max_reminders",
            "expire_after_days",
            "include_products",
            "exclude_products",
            "min_order_total",
            "exclude_tags",
            "status",
        )
    } == {
        "trigger": "fulfilled",
        "delay_days": 7,
        "channel": "both",
        "reminder_enabled": False,
        "reminder_delay_days": 5,
        "max_reminders": 1,
        "expire_after_days": 14,
        "include_products": ["p_1", "SKU-2"],
        "exclude_products": ["p_9"],
        "min_order_total": "25.50",
        "exclude_tags": ["wholesale", "staff"],
        "status": "draft",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", ""], "name is required"),
        (["--name", "x" * 121], "name is required"),
        (["--name", "X", "--delay-days", "-1"], "delay_days must be a whole number from 0 to 365"),
        (["--name", "X", "--delay-days", "366"], "delay_days must be a whole number from 0 to 365"),
        (["--name", "X", "--max-reminders", "11"], "max_reminders must be a whole number from 0 to 10"),
        (["--name", "X", "--expire-after-days", "0"], "expire_after_days must be a whole number from 1 to 365"),
        (["--name", "X", "--reminder-delay-days", "0"], "reminder delay must be at least 1 day"),
        (["--name", "X", "--min-order-total", "lots"], "minimum order total must be a number"),
        (["--name", "X", "--min-order-total", "-3"], "must not be negative"),
        (["--name", "X", "--min-order-total", "NaN"], "must not be negative"),
        (["--name", "X", "--channel", "fax"], "'fax' is not one of"),
        (["--name", "X", "--trigger", "paid"], "'paid' is not one of"),
        (["--name", "X", "--status", "archived"], "'archived' is not one of"),
        (["--name", "X", "--delay-days", "three"], "'three' is not a valid integer"),
        (["--delay-days", "3"], "Missing option '--name'"),
    ],
    ids=[
        "empty-name",
        "long-name",
        "negative-delay",
        "delay-over-a-year",
        "too-many-reminders",
        "zero-expiry",
        "zero-reminder-delay",
        "total-not-a-number",
        "negative-total",
        "nan-total",
        "unknown-channel",
        "unknown-trigger",
        "archived-on-create",
        "delay-not-a-number",
        "no-name",
    ],
)
def test_campaign_create_refuses_invalid_settings_clearly(runner, args, message):
    before = row_counts()
    stderr = refused(runner, "campaigns", "create", *args, "--json")
    assert message in stderr
    assert row_counts() == before


def test_campaign_update_changes_only_what_is_named(runner, clock):
    created = campaign(clock, delay_days=3, exclude_tags=["staff"])
    updated = run_json(runner, "campaigns", "update", str(created.id), "--delay-days", "5", "--channel", "sms")
    assert (updated["id"], updated["delay_days"], updated["channel"]) == (created.id, 5, "sms")
    assert (updated["name"], updated["exclude_tags"], updated["reminder_delay_days"]) == ("Video reviews", ["staff"], 4)


def test_campaign_update_refuses_invalid_settings_and_unknown_ids(runner, clock):
    created = campaign(clock)
    assert "max_reminders" in refused(runner, "campaigns", "update", str(created.id), "--max-reminders", "-1")
    assert run_json(runner, "campaigns", "list")[0]["max_reminders"] == 2
    assert "no campaign with id 999" in refused(runner, "campaigns", "update", "999", "--delay-days", "1")


def test_campaign_list_is_an_array(runner, clock):
    assert run_json(runner, "campaigns", "list") == []
    campaign(clock, name="One")
    campaign(clock, name="Two")
    assert [c["name"] for c in run_json(runner, "campaigns", "list")] == ["One", "Two"]


def test_pause_resume_archive(runner, clock):
    created = str(campaign(clock).id)
    assert run_json(runner, "campaigns", "pause", created)["status"] == "paused"
    assert "cannot pause" in refused(runner, "campaigns", "pause", created)
    assert run_json(runner, "campaigns", "resume", created)["status"] == "active"
    archived = run_json(runner, "campaigns", "archive", created)
    assert (archived["status"], archived["cancelled_requests"]) == ("archived", 0)
    assert "cannot resume" in refused(runner, "campaigns", "resume", created)
    assert "no campaign with id 42" in refused(runner, "campaigns", "pause", "42")


def test_a_draft_campaign_can_be_started_with_resume(runner, clock):
    created = campaign(clock, status="draft")
    assert run_json(runner, "campaigns", "resume", str(created.id))["status"] == "active"


def test_human_output_without_json(runner, clock):
    result = runner.invoke(args=["campaigns", "create", "--name", "Plain"])
    assert result.exit_code == 0
    assert result.stdout.startswith("#1 Plain [active]")


# -- requests ---------------------------------------------------------------------------------


def test_requests_list_has_the_documented_fields(app, client, clock, runner):
    request_id = create_request(client, clock)

    [row] = run_json(runner, "requests", "list")

    assert REQUEST_FIELDS <= set(row)
    assert (row["id"], row["order_id"], row["item_id"], row["product_id"], row["channel"], row["status"]) == (
        request_id,
        "1001",
        "li_1",
        "p_1",
        "email",
        "scheduled",
    )
    assert row["next_send_at"] == "2026-11-20T12:00:00Z"
    assert (row["sent_at"], row["clicked_at"], row["submitted_at"], row["expires_at"], row["last_error"]) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert row["link"] == f"http://testserver.local/r/{request_row(request_id).token}"


def test_requests_list_filters_by_status_and_campaign(client, clock, runner):
    first = campaign(clock, name="First", delay_days=0, exclude_products=["p_2"])
    post_order(client, order_body("evt_1", order_id="1"))
    clock.advance(hours=1)
    second = campaign(clock, name="Second", delay_days=0, include_products=["p_2"])
    post_order(client, order_body("evt_2", order_id="2", items=[{"id": "li_2", "product_id": "p_2"}]))
    run_json(runner, "campaigns", "pause", str(first.id))
    run_json(runner, "dispatch")

    listed = run_json(runner, "requests", "list")  # newest first
    assert [(r["order_id"], r["campaign_id"], r["status"]) for r in listed] == [
        ("2", second.id, "sent"),
        ("1", first.id, "scheduled"),
    ]
    assert [r["order_id"] for r in run_json(runner, "requests", "list", "--status", "sent")] == ["2"]
    assert [r["order_id"] for r in run_json(runner, "requests", "list", "--status", "scheduled")] == ["1"]
    assert run_json(runner, "requests", "list", "--status", "failed") == []
    assert [r["campaign_id"] for r in run_json(runner, "requests", "list", "--campaign", str(second.id))] == [second.id]
    assert "'lost' is not one of" in refused(runner, "requests", "list", "--status", "lost")


def test_requests_show_adds_the_event_timeline(client, clock, runner):
    request_id = create_request(client, clock)
    run_json(runner, "dispatch")

    shown = run_json(runner, "requests", "show", str(request_id))

    assert isinstance(shown, dict) and REQUEST_FIELDS <= set(shown)
    assert (shown["status"], shown["sent_at"], shown["expires_at"]) == (
        "sent",
        "2026-11-20T12:00:00Z",
        "2026-12-20T12:00:00Z",
    )
    assert [e["type"] for e in shown["events"]] == ["queued", "sent"]
    for event in shown["events"]:
        assert EVENT_FIELDS <= set(event)
    sent = shown["events"][1]
    assert (sent["channel"], sent["slot"], sent["provider"], sent["occurred_at"]) == (
        "email",
        0,
        "outbox",
        "2026-11-20T12:00:00Z",
    )
    assert sent["provider_message_id"].startswith("outbox-")
    assert "no request with id 99" in refused(runner, "requests", "show", "99")


def test_requests_retry_only_retries_failed_requests(client, clock, runner):
    body = order_body(customer={"email": "ada@fail.test"})
    request_id = create_request(client, clock, body=body)
    assert "only failed requests can be retried" in refused(runner, "requests", "retry", str(request_id))
    run_json(runner, "dispatch")
    assert request_row(request_id).status == "failed"

    retried = run_json(runner, "requests", "retry", str(request_id))

    assert (retried["status"], retried["attempts"], retried["next_send_at"]) == ("scheduled", 0, "2026-11-20T12:00:00Z")
    assert "no request with id 77" in refused(runner, "requests", "retry", "77")


def test_requests_cancel(client, clock, runner):
    request_id = create_request(client, clock)
    cancelled = run_json(runner, "requests", "cancel", str(request_id), "--reason", "customer asked")
    assert cancelled["status"] == "cancelled"
    assert "cannot be cancelled" in refused(runner, "requests", "cancel", str(request_id))


# -- outbox and dispatch ------------------------------------------------------------------------


def test_outbox_list_has_the_documented_fields(client, clock, runner):
    request_id = create_request(client, clock, channel="both")
    run_json(runner, "dispatch")

    messages = run_json(runner, "outbox", "list")

    assert isinstance(messages, list) and len(messages) == 2
    for message in messages:
        assert OUTBOX_FIELDS <= set(message)
        assert (message["request_id"], message["slot"], message["created_at"]) == (
            request_id,
            0,
            "2026-11-20T12:00:00Z",
        )
    assert {(m["channel"], m["to"]) for m in messages} == {("email", "ada@example.com"), ("sms", "+15551234567")}


def test_dispatch_prints_the_counts_of_the_tick(client, clock, runner):
    create_request(client, clock)
    report = run_json(runner, "dispatch")
    assert isinstance(report, dict)
    assert {k: report[k] for k in ("due", "claimed", "sent", "failed", "expired", "messages")} == {
        "due": 1,
        "claimed": 1,
        "sent": 1,
        "failed": 0,
        "expired": 0,
        "messages": 1,
    }
    assert report["now"] == "2026-11-20T12:00:00Z"


def test_dispatch_now_runs_the_tick_at_that_time(client, clock, runner):
    create_request(client, clock, delay_days=3)
    assert run_json(runner, "dispatch", "--now", "2026-11-22T00:00:00Z")["due"] == 0
    report = run_json(runner, "dispatch", "--now", "2026-11-23T07:00:00-05:00")
    assert (report["sent"], report["now"]) == (1, "2026-11-23T12:00:00Z")
    ticks = db.session.scalars(select(DispatchTick).order_by(DispatchTick.id)).all()
    assert [(t.source, json.loads(t.report)["sent"]) for t in ticks] == [("cli", 0), ("cli", 1)]


@pytest.mark.parametrize("bad", ["tomorrow", "2026-11-23", "2026-11-23T12:00:00", "2026-02-30T00:00:00Z"])
def test_dispatch_now_refuses_a_time_it_cannot_read(client, clock, runner, bad):
    create_request(client, clock)
    before = row_counts()
    stderr = refused(runner, "dispatch", "--now", bad, "--json")
    assert "Invalid value for '--now'" in stderr
    assert row_counts() == before


def test_json_output_is_only_json_even_when_the_engine_logs(client, clock, runner):
    create_request(client, clock)
    result = runner.invoke(args=["dispatch", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sent"] == 1  # the step=5 log lines went elsewhere (stderr)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SEND_LEASE_SECONDS", "ten minutes", "SEND_LEASE_SECONDS must be a whole number, got 'ten minutes'"),
        ("MAX_SEND_ATTEMPTS", "-1", "MAX_SEND_ATTEMPTS must be a whole number of 0 or more, got '-1'"),
        ("DATABASE_POOL_SIZE", "lots", "DATABASE_POOL_SIZE must be a whole number, got 'lots'"),
        ("ALERT_FAILURE_RATE", "20%", "ALERT_FAILURE_RATE must be a number, got '20%'"),
        ("SQLITE_SYNCHRONOUS", "off", "SQLITE_SYNCHRONOUS must be one of FULL, NORMAL, got 'off'"),
        (
            "DISPATCH_TIME_BUDGET_SECONDS",
            "nan",
            "DISPATCH_TIME_BUDGET_SECONDS must be a number of 0 or more, got 'nan'",
        ),
    ],
)
def test_a_numeric_setting_that_is_not_a_number_names_the_variable(tmp_path, name, value, message):
    """The environment is the merchant's input too: a typo in a number refuses to start
    with the variable's name and value, not a bare "invalid literal for int()"."""
    import os
    import subprocess
    import sys

    env = {**os.environ, name: value, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "routes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert not (tmp_path / "x.db").exists()


def test_numeric_settings_accept_numbers_with_spaces(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SEND_LEASE_SECONDS": " 900 ", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    code = "from app import create_app; print(create_app().config['SEND_LEASE_SECONDS'])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "900"
