"""A campaign may send another template for one reminder number, chosen on the campaign
form: the choice is checked (an existing template of that channel), shown on the campaign's
page, counted as a use of the template, and the dispatcher sends it for that reminder."""

import json

import pytest
from sqlalchemy import select

from app.campaign_admin.services import CampaignInvalid, update_campaign
from app.campaigns.models import Campaign, MessageTemplate
from app.clock import now
from app.extensions import db
from tests.campaigns.test_campaign_screens import campaign_form
from tests.factories import campaign as make_campaign
from tests.factories import order_body, outbox, post_order, tick

SAME = "Same as the other reminders"


def new_sms_template(form_post, name="Final SMS", text="{{ shop_name }}: final one! {{ link }}"):
    """A reminder template made on the Templates screen, as a merchant makes one."""
    data = {"name": name, "channel": "sms", "kind": "reminder", "mode": "html", "text": text, "submit": "Save template"}
    response = form_post("/templates/new?channel=sms", "/templates/new", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    return db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.name == name))


def sms_campaign_form(**overrides):
    settings = {"channel": "sms", "delay_days": "0", "reminder_delay_days": "1", "max_reminders": "2"}
    settings.update(include_products="", min_order_total="", sms_send_window="")
    return campaign_form(**{**settings, **overrides})


def test_reminder_two_sends_the_template_chosen_for_it_on_the_campaign_form(logged_in, client, clock, form_post):
    final = new_sms_template(form_post)
    response = form_post("/campaigns/new", data=sms_campaign_form(sms_reminder_2_template_id=str(final)))
    assert response.status_code == 303, response.get_data(as_text=True)
    saved = db.session.scalars(select(Campaign)).one()
    assert json.loads(saved.reminder_template_ids) == {"sms": {"2": final}}

    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    # The campaign's page says which template each reminder sends and keeps the choice.
    assert "Reminder 1 of 2: <a" in page and "Reminder 2 of 2: <a" in page
    messages_card = page[page.index('id="messages-card"') :]
    assert messages_card.index("Final SMS") > messages_card.index("Reminder 2 of 2")
    assert messages_card.count("its own") == 1
    assert f'<option selected value="{final}">Final SMS (reminder)</option>' in page
    # The Templates list counts the campaign as a user of the template.
    templates_page = logged_in.get("/templates/").get_data(as_text=True)
    row = templates_page[templates_page.index("Final SMS") :]
    assert "unused" not in row[: row.index("</tr>")]

    [request_id] = post_order(client, order_body()).get_json()["created"]
    for _ in range(3):
        tick(clock)
        clock.advance(days=1, hours=1)
    texts = {m.slot: m.text for m in outbox(request_id)}
    assert sorted(texts) == [0, 1, 2]
    assert "final one" not in texts[1] and "a quick reminder" in texts[1]
    assert texts[2].startswith("Demo Shop: final one! http")


def test_the_choice_is_changed_and_cleared_on_the_edit_form(logged_in, clock, form_post):
    final = new_sms_template(form_post)
    other = new_sms_template(form_post, name="Other SMS", text="Other {{ link }}")
    created = make_campaign(clock, channel="sms", max_reminders=3)
    url = f"/campaigns/{created.id}"
    form = sms_campaign_form(max_reminders="3", sms_reminder_2_template_id=str(final))
    assert form_post(url, data=form).status_code == 303
    form.update(sms_reminder_2_template_id="", sms_reminder_3_template_id=str(other))
    assert form_post(url, data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Campaign, created.id).reminder_template_map() == {("sms", 3): other}
    # A choice past the maximum could never be sent: it is not kept.
    form.update(max_reminders="2")
    assert form_post(url, data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Campaign, created.id).reminder_template_ids is None
    assert f'<option selected value="">{SAME}</option>' in logged_in.get(url).get_data(as_text=True)


@pytest.mark.parametrize("value", ["99999", "abc", "-1", "email template"])
def test_a_missing_or_wrong_channel_template_is_explained_and_nothing_is_saved(logged_in, clock, form_post, value):
    created = make_campaign(clock, name="Keep me", channel="sms")
    if value == "email template":
        value = str(db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.channel == "email")))
    before = db.session.get(Campaign, created.id).to_dict()
    response = form_post(f"/campaigns/{created.id}", data=sms_campaign_form(sms_reminder_2_template_id=value))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Nothing was saved." in page
    if value != "abc":
        assert f"Choose one of the SMS templates, or “{SAME}”." in page
    db.session.expire_all()
    assert db.session.get(Campaign, created.id).to_dict() == before


def test_the_service_refuses_what_the_form_cannot_send(app, clock):
    """The CLI and other callers reach the same checks (the form's list may be stale)."""
    created = make_campaign(clock, channel="both")
    email_id = db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.channel == "email"))
    for choice, field in (
        ({"sms": {"2": email_id}}, "sms_reminder_2_template_id"),
        ({"email": {"1": 99999}}, "email_reminder_1_template_id"),
        ({"email": {"1": True}}, "email_reminder_1_template_id"),
        ({"sms": {"11": email_id}}, "reminder_template_ids"),
        ({"fax": {"1": email_id}}, "reminder_template_ids"),
        ("not json", "reminder_template_ids"),
        ({"sms": [1, 2]}, "reminder_template_ids"),
    ):
        with pytest.raises(CampaignInvalid) as caught:
            update_campaign(created, now(), reminder_template_ids=choice)
        assert caught.value.field == field, choice
        db.session.rollback()
    assert db.session.get(Campaign, created.id).reminder_template_ids is None


def test_a_template_used_for_one_reminder_keeps_its_channel(logged_in, clock, form_post):
    final = new_sms_template(form_post)
    created = make_campaign(clock, channel="sms")
    update_campaign(created, now(), reminder_template_ids={"sms": {"2": final}})
    db.session.commit()
    data = {"name": "Final SMS", "channel": "email", "kind": "reminder", "mode": "html", "subject": "Hi"}
    data.update(html="<p>{{ link }}</p>", text="", submit="Save template")
    response = form_post(f"/templates/{final}", data=data)
    assert response.status_code == 400
    assert "campaigns use this template: it cannot change channel" in response.get_data(as_text=True).lower()
    assert db.session.get(MessageTemplate, final).channel == "sms"
