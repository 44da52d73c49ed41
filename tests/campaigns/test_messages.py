"""What the merchant sees in the template editor is what customers get: the SMS counter
counts the real message (this shop's link at its real length), 2+ text messages ask
before saving, the simple editor lays the email out with the shop's logo and colour, and a
campaign may use another template for one reminder number."""

import json

import pytest
from sqlalchemy import select

from app.campaigns.models import Campaign, MessageTemplate
from app.campaigns.sms import sms_count
from app.clock import now
from app.extensions import db
from app.settings_admin.services import save_settings
from tests.conftest import csrf_from
from tests.factories import campaign as make_campaign
from tests.factories import item, order_body, outbox, post_order, tick
from tests.images import png


def default_sms(kind):
    return db.session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.channel == "sms", MessageTemplate.kind == kind, MessageTemplate.is_default
        )
    )


def preview_of(client, template, reminder=None):
    data = {
        "name": template.name,
        "channel": "sms",
        "kind": template.kind,
        "text": template.text,
        "csrf_token": csrf_from(client, f"/templates/{template.id}"),
    }
    if reminder:
        data["preview_reminder"] = str(reminder)
    response = client.post("/templates/preview", data=data)
    assert response.status_code == 200
    return response.get_json()


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:5000", "https://reviews.a-much-longer-shop-address.example"])
def test_the_sms_counter_counts_the_message_customers_really_get(logged_in, client, clock, base_url):
    save_settings({"public_base_url": base_url, "shop_name": "Demo Shop"}, now())
    db.session.commit()
    previews = {
        0: preview_of(logged_in, default_sms("initial")),
        1: preview_of(logged_in, default_sms("reminder"), reminder=1),
        2: preview_of(logged_in, default_sms("reminder"), reminder=2),
    }
    # The same customer and product as the editor's sample, through the real path.
    make_campaign(clock, channel="sms", delay_days=0, reminder_delay_days=1, max_reminders=2)
    body = order_body(items=[item(title="Blue ceramic mug")], customer={"phone": "+15551234567", "first_name": "Ada"})
    [request_id] = post_order(client, body).get_json()["created"]
    for _ in range(3):
        tick(clock)
        clock.advance(days=1)
    sent = {m.slot: m.text for m in outbox(request_id)}
    assert sorted(sent) == [0, 1, 2]
    for slot, shown in previews.items():
        real = sms_count(sent[slot])
        assert (shown["sms"]["units"], shown["sms"]["segments"]) == (real.units, real.segments), (slot, sent[slot])
        assert base_url + "/r/" in sent[slot]
    # The defaults fit one text message with the short address.
    if base_url.startswith("http://127.0.0.1"):
        assert {shown["sms"]["segments"] for shown in previews.values()} == {1}


def test_a_text_that_becomes_two_messages_asks_before_it_is_saved(logged_in, form_post):
    template = default_sms("initial")
    longer = template.text + " We read every single one of them and it means the world to our little team."
    data = {"name": template.name, "channel": "sms", "kind": "initial", "text": longer, "submit": "Save template"}
    response = form_post(f"/templates/{template.id}", data=data)
    page = response.get_data(as_text=True)
    assert "Not saved yet" in page and "goes out as 2 text messages" in page and "costs 2× the price" in page
    db.session.expire_all()
    assert db.session.get(MessageTemplate, template.id).text != longer
    # The live preview says the same before any save.
    preview = form_post(f"/templates/{template.id}", "/templates/preview", data=data).get_json()
    assert preview["sms"]["segments"] == 2 and "2× the price" in preview["cost_warning"]
    # Ticking the box saves it.
    response = form_post(f"/templates/{template.id}", data={**data, "accept_segments": "y"})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(MessageTemplate, template.id).text == longer


def test_the_simple_editor_lays_the_email_out_with_the_shops_brand(logged_in, form_post, client, clock):
    save_settings({"brand_color": "#aa3300", "shop_name": "Mugs & Co"}, now(), logo=png(80, 20))
    db.session.commit()
    data = {
        "name": "Short ask",
        "channel": "email",
        "kind": "initial",
        "mode": "simple",
        "subject": "A video about your {{ product_title }}?",
        "heading": "Hello {{ first_name }}!",
        "body": "First paragraph about <things>.\n\nSecond {{ shop_name }} paragraph.",
        "button_text": "Film it",
        "is_default": "y",
        "submit": "Save template",
    }
    assert form_post("/templates/new", data=data).status_code == 303
    make_campaign(clock, delay_days=0)
    [request_id] = post_order(client, order_body()).get_json()["created"]
    tick(clock)
    [email] = outbox(request_id)
    assert "<h1" in email.html and "Hello Ada!" in email.html
    assert "First paragraph about &lt;things&gt;." in email.html and "Second Mugs &amp; Co paragraph." in email.html
    assert email.html.count(">Film it</a>") == 1 and "background:#aa3300" in email.html
    assert 'src="http://testserver.local/brand/logo?v=' in email.html
    assert email.text == (
        "Hello Ada!\n\nFirst paragraph about <things>.\n\nSecond Mugs & Co paragraph.\n\n"
        f"Film it: {email.text.split('Film it: ')[1].split()[0]}\n\n"
        f"Unsubscribe: {email.text.split('Unsubscribe: ')[1]}"
    )
    # An HTML-mode template without a text part gets one made from its HTML.
    data = {
        "name": "Raw",
        "channel": "email",
        "kind": "initial",
        "mode": "html",
        "subject": "Hi",
        "html": '<p>Hi {{ first_name }},</p><p><a href="{{ link }}">Record</a></p>',
        "text": "",
        "submit": "Save template",
    }
    response = form_post("/templates/new", "/templates/preview", data=data).get_json()
    assert response["text"].startswith("Hi Ada,\n\nRecord (http://testserver.local/r/")


def test_a_campaign_may_use_another_template_for_one_reminder(client, clock):
    last = MessageTemplate(
        name="Final SMS",
        channel="sms",
        kind="reminder",
        text="{{ shop_name }}: final one! {{ link }}",
        created_at=clock(),
        updated_at=clock(),
    )
    db.session.add(last)
    db.session.flush()
    created = make_campaign(clock, channel="sms", delay_days=0, reminder_delay_days=1, max_reminders=2)
    created.reminder_template_ids = json.dumps({"sms": {"2": last.id}})
    db.session.commit()
    [request_id] = post_order(client, order_body()).get_json()["created"]
    for _ in range(3):
        tick(clock)
        clock.advance(days=1)
    texts = {m.slot: m.text for m in outbox(request_id)}
    assert "a quick reminder" in texts[1] and texts[2].startswith("Demo Shop: final one! http")
    assert db.session.get(Campaign, created.id).template_for("sms", "reminder", 1).is_default
