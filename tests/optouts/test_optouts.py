"""Opt-outs end to end: an opted-out contact receives nothing more on either channel, new
orders for it are skipped, and the merchant can list, add and remove opt-outs."""

import pytest
from sqlalchemy import select

from app.extensions import db
from app.optouts import services
from app.optouts.models import ContactEvent, OptOut
from tests.events_helpers import (
    PHONE,
    T0,
    TWILIO_INBOUND_PATH,
    inbound_params,
    post_sendgrid,
    post_twilio,
    sg_event,
    webhook_fixtures,
)
from tests.factories import campaign, events_of, item, order_body, outbox, post_order, request_row

EMAIL = "ada@example.com"

signer, app = webhook_fixtures()


def order(client, n, channel_customer=None):
    body = order_body(
        f"evt_{n}",
        order_id=f"o{n}",
        items=[item(f"li_{n}", f"p_{n}")],
        customer=channel_customer or {"email": EMAIL, "phone": PHONE, "first_name": "Ada"},
    )
    response = post_order(client, body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def unsubscribe_by_email(client, signer, request_id=None):
    response = post_sendgrid(client, [sg_event(request_id, "unsubscribe", email=EMAIL, timestamp=T0)], signer)
    assert response.status_code == 200 and response.get_json()["stored"] == 1, response.get_json()


def stop_by_sms(client):
    response = post_twilio(client, TWILIO_INBOUND_PATH, inbound_params("STOP", sender=PHONE))
    assert response.status_code == 200


OPT_OUTS = {
    "email": lambda client, signer: unsubscribe_by_email(client, signer),
    "sms": lambda client, signer: stop_by_sms(client),
}


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_an_opted_out_contact_receives_nothing_more(client, clock, cli, signer, channel):
    campaign(clock, delay_days=1, channel=channel)
    [request_id] = order(client, 1)["created"]
    OPT_OUTS[channel](client, signer)

    req = request_row(request_id)
    assert req.status == "cancelled"
    source = "sendgrid_unsubscribe" if channel == "email" else "sms_stop"
    assert events_of(request_id)[-1].detail == f"customer opted out ({channel}, {source})"
    for _ in range(5):  # the initial slot and every reminder would have come due by now
        clock.advance(days=3)
        report = cli("dispatch")
        assert report["messages"] == 0
    assert outbox(outcome=None) == []

    answer = order(client, 2)
    assert answer["created"] == []
    assert [s["reason"] for s in answer["skipped"]] == ["opted out"]


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_opting_out_after_the_first_message_stops_the_reminders(client, clock, cli, signer, channel):
    campaign(clock, delay_days=0, channel=channel, reminder_delay_days=2, max_reminders=2)
    [request_id] = order(client, 1)["created"]
    assert cli("dispatch")["sent"] == 1
    assert len(outbox()) == 1
    if channel == "email":
        unsubscribe_by_email(client, signer, request_id)
    else:
        stop_by_sms(client)
    for _ in range(4):
        clock.advance(days=2)
        assert cli("dispatch")["messages"] == 0
    assert len(outbox()) == 1
    assert request_row(request_id).status == "cancelled"


def test_a_two_channel_request_keeps_the_channel_not_opted_out(client, clock, cli):
    campaign(clock, delay_days=1, channel="both")
    [request_id] = order(client, 1)["created"]
    stop_by_sms(client)
    assert request_row(request_id).status == "scheduled"
    clock.advance(days=1)
    assert cli("dispatch")["sent"] == 1
    assert [m.channel for m in outbox()] == ["email"]


def test_a_merchant_opt_out_cancels_pending_requests(client, clock, cli):
    campaign(clock, delay_days=1)
    [request_id] = order(client, 1)["created"]
    added = cli("optouts", "add", "email", " Ada@Example.com ", "--note", "asked by phone")
    assert (added["contact"], added["source"], added["created"]) == (EMAIL, "merchant", True)
    assert added["detail"] == "added by cli: asked by phone"
    assert request_row(request_id).status == "cancelled"
    again = cli("optouts", "add", "email", EMAIL)
    assert again["created"] is False
    clock.advance(days=1)
    assert cli("dispatch")["messages"] == 0


def test_the_cli_lists_and_removes_opt_outs(client, clock, cli, signer):
    unsubscribe_by_email(client, signer)
    stop_by_sms(client)
    listed = cli("optouts", "list")
    assert {(r["channel"], r["contact"], r["source"]) for r in listed} == {
        ("email", EMAIL, "sendgrid_unsubscribe"),
        ("sms", PHONE, "sms_stop"),
    }
    assert {r["source_label"] for r in listed} == {"SendGrid unsubscribe", "replied STOP"}
    assert [r["contact"] for r in cli("optouts", "list", "--channel", "sms")] == [PHONE]
    assert [r["contact"] for r in cli("optouts", "list", "--search", "ADA@")] == [EMAIL]

    removed = cli("optouts", "remove", "sms", "+1 555 123 4567")
    assert (removed["contact"], removed["removed"]) == (PHONE, True)
    assert [r["channel"] for r in cli("optouts", "list")] == ["email"]
    history = cli("optouts", "history", "sms", PHONE)
    assert [(h["type"], h["source"]) for h in history] == [("opted_in", "merchant"), ("opted_out", "sms_stop")]
    assert history[0]["detail"] == "removed by cli (was: sms_stop)"


def test_after_removal_new_orders_get_requests_again(client, clock, cli, signer):
    campaign(clock, delay_days=1)
    [cancelled] = order(client, 1)["created"]
    unsubscribe_by_email(client, signer)
    cli("optouts", "remove", "email", EMAIL)
    [fresh] = order(client, 2)["created"]
    assert request_row(cancelled).status == "cancelled"  # removal does not revive what was cancelled
    assert request_row(fresh).status == "scheduled"


@pytest.mark.parametrize(
    "args, message",
    [
        (("add", "email", "not-an-email"), "is not an email address"),
        (("add", "sms", "555-1234"), "international format"),
        (("remove", "email", "nobody@example.com"), "is not on the email opt-out list"),
        (("remove", "sms", "abc"), "international format"),
    ],
)
def test_the_cli_refuses_bad_input_clearly(runner, args, message):
    result = runner.invoke(args=["optouts", *args, "--json"])
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(select(OptOut.id)) is None


def test_a_late_unsubscribe_older_than_the_merchants_removal_is_not_applied(client, clock, cli, signer):
    # The customer unsubscribed at 11:00 (the event reaches us late); the merchant re-added
    # them at 12:00 after a phone call: the 11:00 event is recorded but does not win.
    cli("optouts", "add", "email", EMAIL)
    cli("optouts", "remove", "email", EMAIL)
    late = sg_event(None, "unsubscribe", email=EMAIL, timestamp=T0 - 3600)
    assert post_sendgrid(client, [late], signer).get_json()["stored"] == 1
    assert db.session.scalar(select(OptOut.id)) is None
    newest = db.session.scalars(select(ContactEvent).order_by(ContactEvent.id.desc())).first()
    assert (newest.type, newest.applied) == ("opted_out", False)
    # A newer unsubscribe is applied.
    newer = sg_event(None, "unsubscribe", email=EMAIL, timestamp=T0 + 60)
    assert post_sendgrid(client, [newer], signer).get_json()["stored"] == 1
    assert db.session.scalar(select(OptOut.source)) == "sendgrid_unsubscribe"


def test_service_functions_for_the_dashboard(app, clock):
    now = clock()
    row, created = services.add_optout("sms", "+44 20 7946 0958", now, by="merchant@shop.example", detail="x")
    assert created and row.contact == "+442079460958"
    services.add_optout("email", "B@Example.com", now)
    assert services.count_optouts() == 2 and services.count_optouts("sms") == 1
    assert [o.contact for o in services.list_optouts(search="example")] == ["b@example.com"]
    assert db.session.scalars(services.optouts_query(channel="email")).all()[0].contact == "b@example.com"
    assert services.source_label("link") == "unsubscribe link"
    removed = services.remove_optout(row.id, now, by="merchant@shop.example")
    assert removed["contact"] == "+442079460958"
    with pytest.raises(services.OptOutNotFound):
        services.remove_optout(row.id, now)
    with pytest.raises(services.OptOutInvalid) as caught:
        services.add_optout("fax", "1", now)
    assert caught.value.field == "channel"


def test_the_opt_out_log_lines_name_contacts_masked(client, clock, cli, signer, app_caplog):
    """Log files travel further than the database (support tickets, log services): a line
    says which contact in a form an operator recognises, not the address itself."""
    unsubscribe_by_email(client, signer)
    stop_by_sms(client)
    cli("optouts", "add", "email", "grace@example.com")
    cli("optouts", "remove", "sms", PHONE)
    cli("optouts", "remove", "email", "grace@example.com")

    lines = [r.getMessage() for r in app_caplog.records if r.getMessage().startswith(("opt-out", "opt-in"))]
    assert len(lines) >= 5, lines
    assert not any(contact in line for line in lines for contact in (EMAIL, PHONE, "grace@example.com")), lines
    assert any("a•••@example.com" in line for line in lines) and any("+1•••••4567" in line for line in lines), lines
