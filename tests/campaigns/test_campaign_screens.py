"""Campaign screens: list, create/edit with validation, pause / resume / archive."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.campaigns.models import Campaign, MessageTemplate
from app.clock import as_utc
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from tests.factories import campaign, order_body


def template_id(channel, kind):
    return db.session.scalar(
        select(MessageTemplate.id).where(
            MessageTemplate.channel == channel, MessageTemplate.kind == kind, MessageTemplate.is_default
        )
    )


def campaign_form(**overrides):
    data = {
        "name": "Mugs",
        "status": "active",
        "trigger": "delivered",
        "delay_days": "2",
        "channel": "email",
        "reminder_enabled": "y",
        "reminder_delay_days": "5",
        "max_reminders": "3",
        "expire_after_days": "40",
        "include_products": "p_1, MUG-1\np_2",
        "exclude_products": "",
        "min_order_total": "25.50",
        "exclude_tags": "wholesale",
        "email_send_window": "",
        "sms_send_window": "09:00-20:00",
        "email_initial_template_id": str(template_id("email", "initial")),
        "email_reminder_template_id": str(template_id("email", "reminder")),
        "sms_initial_template_id": str(template_id("sms", "initial")),
        "sms_reminder_template_id": str(template_id("sms", "reminder")),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def only_request():
    db.session.expire_all()
    return db.session.scalars(select(TestimonialRequest)).one()


def test_list_shows_status_counts_and_last_send(logged_in, client, clock, cli):
    campaign(clock, name="Mug campaign", delay_days=0)
    client.post("/webhooks/orders", json=order_body())
    cli("dispatch")
    page = logged_in.get("/campaigns/").get_data(as_text=True)
    assert "Mug campaign" in page
    assert "sent 1" in page
    assert "2026-11-20 12:00" in page  # last send time


def test_empty_list_invites_to_create(logged_in):
    page = logged_in.get("/campaigns/").get_data(as_text=True)
    assert "Create your first campaign" in page


def test_create_saves_every_setting(logged_in, form_post):
    response = form_post("/campaigns/new", data=campaign_form())
    assert response.status_code == 303, response.get_data(as_text=True)
    saved = db.session.scalars(select(Campaign)).one()
    assert (saved.name, saved.delay_days, saved.reminder_delay_days, saved.max_reminders, saved.expire_after_days) == (
        "Mugs",
        2,
        5,
        3,
        40,
    )
    assert saved.include_products == ["p_1", "MUG-1", "p_2"]
    assert saved.exclude_tags == ["wholesale"]
    assert str(saved.min_order_total) == "25.50"
    assert saved.email_send_window is None and saved.sms_send_window == "09:00-20:00"
    assert saved.email_reminder_template_id == template_id("email", "reminder")
    assert "Campaign “Mugs” created." in logged_in.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reminder_delay_days": "0"}, "The reminder delay must be at least 1 day when reminders are on."),
        ({"max_reminders": "11"}, "Maximum reminders must be a whole number from 0 to 10."),
        ({"max_reminders": "-1"}, "Maximum reminders must be a whole number from 0 to 10."),
        ({"name": ""}, "Give the campaign a name."),
        ({"expire_after_days": "0"}, "The expiry must be a whole number from 1 to 365."),
        ({"min_order_total": "-3"}, "The minimum order total must not be negative."),
        ({"sms_send_window": "25:00-08:00"}, "SMS send window: &#39;25:00-08:00&#39; has a time that does not exist"),
        ({"channel": "both", "email_send_window": "06:00-08:00", "sms_send_window": "09:00-20:00"}, "never overlap"),
        ({"email_initial_template_id": ""}, "This campaign sends email: choose a template for its first message"),
        ({"email_initial_template_id": "99999"}, "Choose one of the email templates."),
        ({"channel": "sms", "sms_initial_template_id": ""}, "This campaign sends SMS: choose a template for its first"),
        ({"channel": "sms", "sms_reminder_template_id": "99999"}, "Choose one of the SMS templates."),
    ],
)
def test_invalid_settings_are_explained_and_nothing_is_saved(logged_in, form_post, overrides, message):
    response = form_post("/campaigns/new", data=campaign_form(**overrides))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page
    assert "Nothing was saved." in page
    assert db.session.scalars(select(Campaign)).all() == []


def test_reminder_delay_zero_is_fine_when_reminders_are_off(logged_in, form_post):
    data = campaign_form(reminder_delay_days="0", reminder_enabled=None)
    assert form_post("/campaigns/new", data=data).status_code == 303
    assert db.session.scalars(select(Campaign)).one().reminder_enabled is False


def test_post_without_csrf_token_is_refused_and_changes_nothing(logged_in, clock):
    created = campaign(clock, name="Keep me")
    assert logged_in.post("/campaigns/new", data=campaign_form()).status_code == 400
    assert logged_in.post(f"/campaigns/{created.id}", data=campaign_form(name="Changed")).status_code == 400
    for action in ("pause", "archive"):
        assert logged_in.post(f"/campaigns/{created.id}/{action}").status_code == 400
    db.session.expire_all()
    assert [(c.name, c.status) for c in db.session.scalars(select(Campaign))] == [("Keep me", "active")]


def test_edit_form_shows_current_settings_and_says_edits_apply_to_unsent_slots(logged_in, clock):
    created = campaign(clock, name="Tees", delay_days=6, include_products=["p_9", "TEE"], sms_send_window="10:00-18:00")
    page = logged_in.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert 'value="Tees"' in page and 'value="6"' in page
    assert "p_9\nTEE" in page and 'value="10:00-18:00"' in page
    assert "Changes apply to messages not sent yet" in page


def test_edit_replans_the_pending_first_message(logged_in, client, clock, form_post):
    created = campaign(clock, delay_days=3)
    client.post("/webhooks/orders", json=order_body())
    trigger = as_utc(only_request().trigger_at)
    assert as_utc(only_request().next_send_at) == trigger + timedelta(days=3)
    response = form_post(f"/campaigns/{created.id}", data=campaign_form(delay_days="5"))
    assert response.status_code == 303
    assert as_utc(only_request().next_send_at) == trigger + timedelta(days=5)


def test_edit_with_an_invalid_value_keeps_the_old_settings(logged_in, clock, form_post):
    created = campaign(clock, name="Before", reminder_delay_days=4)
    response = form_post(f"/campaigns/{created.id}", data=campaign_form(name="After", reminder_delay_days="0"))
    assert response.status_code == 400
    db.session.expire_all()
    assert (created.name, created.reminder_delay_days) == ("Before", 4)


def test_unknown_campaign_is_404(logged_in):
    assert logged_in.get("/campaigns/999").status_code == 404
    assert logged_in.get("/campaigns/999/archive").status_code == 404


def test_page_says_what_each_action_does_to_pending_sends(logged_in, clock):
    created = campaign(clock)
    page = logged_in.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "Holds every pending message until you resume" in page
    assert "go out within the next minute or so" in page and "tick" not in page
    assert "its pending requests are cancelled" in page
    assert "data-confirm=" in page and "confirm-actions.js" in page


def test_pause_holds_sends_and_resume_releases_overdue_ones(logged_in, client, clock, cli, form_post):
    created = campaign(clock, delay_days=1)
    client.post("/webhooks/orders", json=order_body())
    page = f"/campaigns/{created.id}"
    response = form_post(page, f"/campaigns/{created.id}/pause")
    assert response.status_code == 303
    assert "Paused: no request of this campaign is sent" in logged_in.get(page).get_data(as_text=True)
    db.session.expire_all()
    assert created.status == "paused"
    clock.advance(days=2)
    assert cli("dispatch")["sent"] == 0
    assert only_request().status == "scheduled"

    assert form_post(page, f"/campaigns/{created.id}/resume").status_code == 303
    db.session.expire_all()
    assert created.status == "active"
    assert cli("dispatch")["sent"] == 1
    assert only_request().status == "sent"


def test_archive_asks_first_then_cancels_pending_requests(logged_in, client, clock, form_post):
    created = campaign(clock, delay_days=1)
    client.post("/webhooks/orders", json=order_body())
    confirm_page = logged_in.get(f"/campaigns/{created.id}/archive").get_data(as_text=True)
    assert "cancels 1 pending request" in confirm_page
    db.session.expire_all()
    assert created.status == "active"  # looking at the confirmation changes nothing

    response = form_post(f"/campaigns/{created.id}/archive", data={})
    assert response.status_code == 303
    db.session.expire_all()
    assert created.status == "archived"
    assert only_request().status == "cancelled"
    assert "1 pending request cancelled" in logged_in.get(response.headers["Location"]).get_data(as_text=True)


def test_a_move_the_status_does_not_allow_changes_nothing(logged_in, clock, form_post):
    created = campaign(clock, status="draft")
    response = form_post(f"/campaigns/{created.id}", f"/campaigns/{created.id}/pause")
    assert response.status_code == 303
    assert "Nothing changed" in logged_in.get(response.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    assert created.status == "draft"


def test_create_as_draft_then_activate(logged_in, form_post):
    assert form_post("/campaigns/new", data=campaign_form(status="draft")).status_code == 303
    saved = db.session.scalars(select(Campaign)).one()
    assert saved.status == "draft"
    page = logged_in.get(f"/campaigns/{saved.id}").get_data(as_text=True)
    assert ">Activate</button>" in page and ">Pause</button>" not in page
    assert form_post(f"/campaigns/{saved.id}", f"/campaigns/{saved.id}/resume").status_code == 303
    db.session.expire_all()
    assert saved.status == "active"
