"""Send windows (quiet hours): the pure deferral policy, campaign settings, and a dispatch
tick that holds an SMS due at night until the window opens.

Not in the spec: quiet hours are the product's own rule (docs/send-windows.md). They only
ever move a due time later, stored in UTC (spec §2: all scheduling in UTC), computed in
the shop's time zone across daylight-saving changes."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app import create_app
from app.campaign_admin.services import CampaignInvalid, create_campaign
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.policy import (
    SendWindow,
    WindowInvalid,
    defer_to_window,
    defer_to_windows,
    normalize_window,
    windows_overlap,
)
from tests.conftest import make_config
from tests.factories import campaign, order_body

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# (window, zone, due (UTC), expected (UTC), why)
CASES = [
    ("09:00-20:00", NY, "2026-11-20T15:00:00Z", "2026-11-20T15:00:00Z", "10:00 EST is inside: unchanged"),
    ("09:00-20:00", NY, "2026-11-20T14:00:00Z", "2026-11-20T14:00:00Z", "exactly at the opening is inside"),
    ("09:00-20:00", NY, "2026-11-20T13:59:00Z", "2026-11-20T14:00:00Z", "08:59 waits a minute"),
    ("09:00-20:00", NY, "2026-11-21T01:00:00Z", "2026-11-21T14:00:00Z", "20:00 is closed (end exclusive)"),
    ("09:00-20:00", NY, "2026-11-21T03:00:00Z", "2026-11-21T14:00:00Z", "22:00 → 09:00 next day"),
    ("09:00-20:00", NY, "2026-11-21T05:30:00Z", "2026-11-21T14:00:00Z", "00:30 → 09:00 the same day"),
    ("09:00-20:00", NY, "2026-11-20T13:59:30Z", "2026-11-20T14:00:00Z", "seconds before the opening"),
    ("09:00-20:00", TOKYO, "2026-11-20T12:00:00Z", "2026-11-21T00:00:00Z", "21:00 JST → 09:00 JST"),
    # Windows that cross midnight.
    ("22:00-06:00", NY, "2026-11-21T04:00:00Z", "2026-11-21T04:00:00Z", "23:00 is inside"),
    ("22:00-06:00", NY, "2026-11-21T08:00:00Z", "2026-11-21T08:00:00Z", "03:00 is inside"),
    ("22:00-06:00", NY, "2026-11-21T12:00:00Z", "2026-11-22T03:00:00Z", "07:00 → 22:00 the same day"),
    ("22:00-06:00", NY, "2026-11-21T11:00:00Z", "2026-11-22T03:00:00Z", "06:00 is closed (end exclusive)"),
    ("18:00-02:00", BERLIN, "2026-11-20T02:00:00Z", "2026-11-20T17:00:00Z", "03:00 CET → 18:00 CET"),
    ("00:00-24:00", NY, "2026-11-21T05:00:00Z", "2026-11-21T05:00:00Z", "a whole day is always open"),
    # Spring forward, America/New_York, Sunday 2026-03-08: 02:00 EST → 03:00 EDT.
    ("09:00-20:00", NY, "2026-03-08T03:00:00Z", "2026-03-08T13:00:00Z", "22:00 EST → 09:00 EDT (UTC−4)"),
    ("09:00-20:00", NY, "2026-03-08T01:00:00Z", "2026-03-08T13:00:00Z", "20:00 EST on the eve → 09:00 EDT"),
    ("02:30-05:00", NY, "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "02:30 does not exist: opens at the jump"),
    ("02:00-02:30", NY, "2026-03-08T06:00:00Z", "2026-03-09T06:00:00Z", "window skipped that day: next day"),
    # Fall back, America/New_York, Sunday 2026-11-01: 02:00 EDT → 01:00 EST.
    ("09:00-20:00", NY, "2026-11-01T02:00:00Z", "2026-11-01T14:00:00Z", "22:00 EDT → 09:00 EST (UTC−5)"),
    ("01:30-05:00", NY, "2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z", "repeated 01:30: the first one"),
    ("22:00-06:00", NY, "2026-11-01T10:30:00Z", "2026-11-01T10:30:00Z", "05:30 EST (06:30 in EDT): inside"),
    ("22:00-06:00", NY, "2026-11-01T11:00:00Z", "2026-11-02T03:00:00Z", "06:00 EST: closed until 22:00 EST"),
    # Europe/Berlin, Sunday 2026-03-29: 02:00 CET → 03:00 CEST.
    ("09:00-20:00", BERLIN, "2026-03-28T21:00:00Z", "2026-03-29T07:00:00Z", "22:00 CET → 09:00 CEST"),
]


@pytest.mark.parametrize(("window", "tz", "due", "expected", "why"), CASES, ids=[c[4] for c in CASES])
def test_defer_to_window(window, tz, due, expected, why):
    result = defer_to_window(utc(due), SendWindow.parse(window), tz)
    assert result == utc(expected), why
    assert result.tzinfo is not None and result.utcoffset().total_seconds() == 0


def test_no_window_means_any_time():
    due = utc("2026-11-21T07:00:00Z")
    assert defer_to_window(due, None, NY) == due
    assert defer_to_windows(due, [], NY) == due


def test_several_windows_wait_until_all_are_open():
    email, sms = SendWindow.parse("10:00-22:00"), SendWindow.parse("09:00-20:00")
    # 08:00 EST: SMS opens at 09:00, email at 10:00 → both at 10:00.
    assert defer_to_windows(utc("2026-11-20T13:00:00Z"), [email, sms], NY) == utc("2026-11-20T15:00:00Z")
    # 21:00 EST: email still open, SMS closed → 10:00 next day.
    assert defer_to_windows(utc("2026-11-21T02:00:00Z"), [email, sms], NY) == utc("2026-11-21T15:00:00Z")
    # Windows that never meet: no answer.
    assert (
        defer_to_windows(
            utc("2026-11-20T13:00:00Z"), [SendWindow.parse("08:00-09:00"), SendWindow.parse("18:00-19:00")], NY
        )
        is None
    )


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("09:00-20:00", "09:00-20:00"),
        ("9:00-20:00", "09:00-20:00"),
        (" 22:00 – 06:30 ", "22:00-06:30"),
        ("08:00-24:00", "08:00-24:00"),
        ("any", None),
        ("", None),
        (None, None),
        ("ANY", None),
    ],
)
def test_window_texts_are_normalised(text, stored):
    assert normalize_window(text) == stored


@pytest.mark.parametrize(
    "text",
    ["9-20", "25:00-08:00", "09:60-10:00", "10:00-10:00", "00:00-00:00", "10:00-24:30", "nightly", "24:00-08:00"],
)
def test_unreadable_windows_are_refused_with_the_expected_form(text):
    with pytest.raises(WindowInvalid, match="HH:MM|does not exist|same time"):
        SendWindow.parse(text)


def test_quiet_hours_wording_and_overlap():
    window = SendWindow.parse("09:00-20:00")
    assert window.quiet_hours() == "20:00–09:00"
    assert windows_overlap(window, SendWindow.parse("19:00-23:00"))
    assert windows_overlap(window, None)
    assert not windows_overlap(window, SendWindow.parse("20:00-09:00"))
    assert windows_overlap(SendWindow.parse("22:00-10:00"), SendWindow.parse("09:30-21:00"))


# -- campaign settings ------------------------------------------------------------------


def test_campaign_defaults_are_sms_daytime_and_email_any_time(app, clock):
    created = campaign(clock, channel="both")
    assert created.to_dict()["sms_send_window"] == "09:00-20:00"
    assert created.to_dict()["email_send_window"] is None


def test_cli_sets_and_clears_windows(cli):
    created = cli(
        "campaigns",
        "create",
        "--name",
        "Night owls",
        "--channel",
        "sms",
        "--sms-window",
        "9:30-21:00",
        "--email-window",
        "08:00-18:00",
    )
    assert created["sms_send_window"] == "09:30-21:00"
    assert created["email_send_window"] == "08:00-18:00"
    updated = cli("campaigns", "update", str(created["id"]), "--sms-window", "any", "--email-window", "any")
    assert updated["sms_send_window"] is None
    assert updated["email_send_window"] is None


def test_cli_refuses_a_bad_window_and_changes_nothing(runner, cli):
    result = runner.invoke(args=["campaigns", "create", "--name", "X", "--sms-window", "9pm-8am"])
    assert result.exit_code != 0
    assert "sms send window" in result.output and "HH:MM-HH:MM" in result.output
    assert cli("campaigns", "list") == []


def test_both_channels_need_windows_that_overlap(app, clock):
    with pytest.raises(CampaignInvalid, match="never overlap") as exc:
        create_campaign(
            clock(), name="x", channel="both", email_send_window="20:00-23:00", sms_send_window="09:00-20:00"
        )
    assert exc.value.field == "sms_send_window"
    db.session.rollback()


def test_an_unknown_shop_timezone_refuses_to_start(tmp_path):
    config = make_config(tmp_path, tmp_path / "x.db", SHOP_TIMEZONE="America/New_Yrok")
    with pytest.raises(RuntimeError, match="SHOP_TIMEZONE='America/New_Yrok' is not a time zone name"):
        create_app(config)


# -- end to end through a dispatch tick ----------------------------------------------------


@pytest.fixture
def ny_app(app_factory):
    app = app_factory(SHOP_TIMEZONE="America/New_York")
    with app.app_context():
        yield app


def run(app, *args):
    result = app.test_cli_runner().invoke(args=[*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_an_sms_due_at_22h_goes_out_at_9h_next_day_with_the_deferral_on_the_request(ny_app, clock):
    client = ny_app.test_client()
    campaign(clock, channel="sms", delay_days=1)
    # Delivered at 22:00 New York time (03:00 UTC); due a day later, again at 22:00.
    clock.set("2026-11-20T03:00:00Z")
    response = client.post("/webhooks/orders", json=order_body(occurred_at="2026-11-20T03:00:00Z"))
    assert response.status_code == 202, response.get_json()
    [request_id] = response.get_json()["created"]

    clock.set("2026-11-21T03:00:00Z")  # 22:00 EST: due, but inside SMS quiet hours
    report = run(ny_app, "dispatch")
    assert (report["deferred"], report["claimed"], report["messages"]) == (1, 0, 0)
    shown = run(ny_app, "requests", "show", str(request_id))
    assert shown["status"] == "scheduled"
    assert shown["next_send_at"] == "2026-11-21T14:00:00Z"  # 09:00 EST
    deferred = [e for e in shown["events"] if e["type"] == "deferred"]
    assert [e["detail"] for e in deferred] == [
        "SMS quiet hours 20:00–09:00 America/New_York; deferred to 2026-11-21 09:00 EST (2026-11-21 14:00 UTC)"
    ]
    assert run(ny_app, "outbox", "list") == []

    clock.set("2026-11-21T13:59:00Z")  # 08:59: still nothing, and no second deferral
    report = run(ny_app, "dispatch")
    assert (report["due"], report["deferred"], report["messages"]) == (0, 0, 0)

    clock.set("2026-11-21T14:00:00Z")
    report = run(ny_app, "dispatch")
    assert (report["sent"], report["deferred"]) == (1, 0)
    [message] = run(ny_app, "outbox", "list")
    assert message["channel"] == "sms" and message["created_at"] == "2026-11-21T14:00:00Z"
    req = db.session.get(TestimonialRequest, request_id)
    assert req.status == "sent" and req.sent_at == utc("2026-11-21T14:00:00Z")
    # Times stay in UTC; the first reminder lands 4 days later at 09:00 shop time, inside.
    assert req.next_send_at == utc("2026-11-25T14:00:00Z")


def test_email_has_no_quiet_hours_by_default(ny_app, clock):
    client = ny_app.test_client()
    campaign(clock, channel="email", delay_days=0)
    clock.set("2026-11-21T08:00:00Z")  # 03:00 in New York
    client.post("/webhooks/orders", json=order_body(occurred_at="2026-11-21T08:00:00Z"))
    report = run(ny_app, "dispatch")
    assert (report["sent"], report["deferred"]) == (1, 0)


def test_both_channels_wait_for_the_later_opening(ny_app, clock):
    client = ny_app.test_client()
    campaign(clock, channel="both", delay_days=0, email_send_window="10:00-22:00")
    clock.set("2026-11-21T13:30:00Z")  # 08:30 EST: email opens 10:00, SMS 09:00
    response = client.post("/webhooks/orders", json=order_body(occurred_at="2026-11-21T13:30:00Z"))
    [request_id] = response.get_json()["created"]
    assert run(ny_app, "dispatch")["deferred"] == 1
    shown = run(ny_app, "requests", "show", str(request_id))
    assert shown["next_send_at"] == "2026-11-21T15:00:00Z"
    [event] = [e for e in shown["events"] if e["type"] == "deferred"]
    assert event["detail"].startswith("email quiet hours 22:00–10:00, SMS quiet hours 20:00–09:00 America/New_York")
    clock.set("2026-11-21T15:00:00Z")
    report = run(ny_app, "dispatch")
    assert (report["sent"], report["messages"]) == (1, 2)


def test_a_window_edited_later_applies_to_pending_slots(ny_app, clock):
    client = ny_app.test_client()
    created = campaign(clock, channel="sms", delay_days=0)
    clock.set("2026-11-21T03:00:00Z")  # 22:00 EST
    client.post("/webhooks/orders", json=order_body(occurred_at="2026-11-21T03:00:00Z"))
    run(ny_app, "campaigns", "update", str(created.id), "--sms-window", "any")
    assert run(ny_app, "dispatch")["sent"] == 1
