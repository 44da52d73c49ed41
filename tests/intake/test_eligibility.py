"""Step 2 (eligibility) and steps 3–4 (split per product, create): the pure rules of
app.intake.eligibility, then the same rules through the webhook, where every skip is
recorded with its reason."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.intake.eligibility import CampaignRules, evaluate_item, usable_channels
from app.intake.models import OrderEventItem
from app.intake.schema import parse_order_event
from app.optouts.models import OptOut
from tests.factories import all_requests, campaign, item, order_body, post_order, request_row

# -- pure rules -------------------------------------------------------------------------

ADA = {"email": "ada@example.com", "phone": "+15551234567", "first_name": "Ada"}
EMAIL_ONLY = {"email": "ada@example.com"}
PHONE_ONLY = {"phone": "+15551234567"}
LOCAL_PHONE = {"phone": "555-1234"}
NOBODY = {"first_name": "Ada"}


def rules(**settings):
    return CampaignRules(id=1, **{"trigger": "delivered", "channel": "email", **settings})


def order(customer=ADA, items=None, event_type="order.delivered", **fields):
    body = order_body(
        customer=customer, items=items or [item("li_1", "p_1", sku="MUG-1")], event_type=event_type, **fields
    )
    return parse_order_event(body)


# (id, rules, order, evaluate_item keyword arguments, expected: channel or skip reason)
PURE_CASES = [
    ("delivered item is eligible", rules(), order(), {}, "email"),
    (
        "undelivered item waits",
        rules(),
        order(items=[item("li_1", "p_1", delivered=False)]),
        {},
        "skip: item not delivered yet",
    ),
    (
        "item without a delivered flag counts as delivered",
        rules(),
        order(items=[{"id": "li_1", "product_id": "p_1"}]),
        {},
        "email",
    ),
    (
        "fulfilled trigger ignores the delivered flag",
        rules(trigger="fulfilled"),
        order(items=[item("li_1", "p_1", delivered=False)], event_type="order.fulfilled"),
        {},
        "email",
    ),
    (
        "email needs an email address",
        rules(),
        order(customer=PHONE_ONLY),
        {},
        "skip: no usable contact: no email address",
    ),
    (
        "sms needs a phone",
        rules(channel="sms"),
        order(customer=EMAIL_ONLY),
        {},
        "skip: no usable contact: no phone number",
    ),
    (
        "sms needs an E.164 phone",
        rules(channel="sms"),
        order(customer=LOCAL_PHONE),
        {},
        "skip: no usable contact: phone '555-1234' is not in E.164 format (e.g. +15551234567)",
    ),
    ("sms with an E.164 phone", rules(channel="sms"), order(customer=PHONE_ONLY), {}, "sms"),
    ("both with both contacts sends both", rules(channel="both"), order(), {}, "both"),
    ("both with only an email sends email", rules(channel="both"), order(customer=EMAIL_ONLY), {}, "email"),
    ("both with only a phone sends sms", rules(channel="both"), order(customer=PHONE_ONLY), {}, "sms"),
    (
        "both with a non-E.164 phone sends email",
        rules(channel="both"),
        order(customer={**EMAIL_ONLY, **LOCAL_PHONE}),
        {},
        "email",
    ),
    (
        "both with no contact is skipped",
        rules(channel="both"),
        order(customer=NOBODY),
        {},
        "skip: no usable contact: no email address; no phone number",
    ),
    ("include list by product id", rules(include_products=("p_1",)), order(), {}, "email"),
    ("include list by SKU", rules(include_products=("MUG-1",)), order(), {}, "email"),
    (
        "product not in the include list",
        rules(include_products=("p_2", "SKU-2")),
        order(),
        {},
        "skip: product not in the campaign's include list",
    ),
    (
        "exclude list by product id",
        rules(exclude_products=("p_1",)),
        order(),
        {},
        "skip: product excluded by the campaign",
    ),
    ("exclude list by SKU", rules(exclude_products=("MUG-1",)), order(), {}, "skip: product excluded by the campaign"),
    ("exclude list naming other products", rules(exclude_products=("p_2",)), order(), {}, "email"),
    (
        "total below the minimum",
        rules(min_order_total=Decimal("60.00")),
        order(),
        {},
        "skip: order total 59.90 below the minimum 60.00",
    ),
    ("total equal to the minimum", rules(min_order_total=Decimal("59.90")), order(), {}, "email"),
    (
        "total unknown with a minimum",
        rules(min_order_total=Decimal("10")),
        order(total=None),
        {},
        "skip: order total unknown; the campaign needs at least 10",
    ),
    (
        "excluded tag",
        rules(exclude_tags=("wholesale",)),
        order(tags=["vip", "Wholesale"]),
        {},
        "skip: customer tag wholesale is excluded",
    ),
    ("other tags pass", rules(exclude_tags=("wholesale",)), order(tags=["vip"]), {}, "email"),
    ("opted out of the campaign's channel", rules(), order(), {"opted_out": {"email"}}, "skip: opted out"),
    (
        "opted out of email on a both campaign sends sms",
        rules(channel="both"),
        order(),
        {"opted_out": {"email"}},
        "sms",
    ),
    (
        "opted out of both on a both campaign",
        rules(channel="both"),
        order(),
        {"opted_out": {"email", "sms"}},
        "skip: opted out",
    ),
    ("opted out of sms does not stop email", rules(), order(), {"opted_out": {"sms"}}, "email"),
    (
        "already asked by this campaign",
        rules(),
        order(),
        {"already_asked": True},
        "skip: customer already asked about this product by this campaign",
    ),
]


@pytest.mark.parametrize(
    ("campaign_rules", "event", "kwargs", "expected"), [c[1:] for c in PURE_CASES], ids=[c[0] for c in PURE_CASES]
)
def test_evaluate_item(campaign_rules, event, kwargs, expected):
    verdict = evaluate_item(campaign_rules, event, event.items[0], **kwargs)
    if expected.startswith("skip: "):
        assert (verdict.eligible, verdict.reason, verdict.channel) == (False, expected[6:], None)
    else:
        assert (verdict.eligible, verdict.reason, verdict.channel) == (True, None, expected)


def test_usable_channels_says_why_each_channel_cannot_be_used():
    assert usable_channels("both", None, "12", frozenset()) == (
        [],
        ["no email address", "phone '12' is not in E.164 format (e.g. +15551234567)"],
    )
    assert usable_channels("both", "a@b.co", "+15551234567", {"sms"}) == (["email"], ["opted out of SMS"])


def test_campaign_rules_are_read_from_a_campaign(app, clock):
    created = campaign(clock, include_products=["p_1"], exclude_tags=["Wholesale"], min_order_total="25")
    read = CampaignRules.of(created)
    assert read == CampaignRules(
        id=created.id,
        trigger="delivered",
        channel="email",
        include_products=("p_1",),
        exclude_products=(),
        min_order_total=Decimal("25.00"),
        exclude_tags=("wholesale",),
    )


# -- through the webhook ------------------------------------------------------------------


def skips(response):
    return {(s["item_id"], s["reason"]) for s in response.get_json()["skipped"]}


def outcomes():
    db.session.expire_all()
    return [
        (r.item_id, r.campaign_id, r.outcome, r.reason)
        for r in db.session.scalars(select(OrderEventItem).order_by(OrderEventItem.id))
    ]


def test_undelivered_items_are_skipped_and_delivered_ones_requested(client, clock):
    campaign(clock)
    response = post_order(client, order_body(items=[item("li_1", "p_1"), item("li_2", "p_2", delivered=False)]))
    [request_id] = response.get_json()["created"]
    assert request_row(request_id).product_id == "p_1"
    assert skips(response) == {("li_2", "item not delivered yet")}


@pytest.mark.parametrize(
    ("channel", "customer", "expected"),
    [
        ("email", {"phone": "+15551234567"}, "skip: no usable contact: no email address"),
        ("email", {"email": "ada@example.com"}, "email"),
        ("sms", {"email": "ada@example.com"}, "skip: no usable contact: no phone number"),
        (
            "sms",
            {"phone": "(555) 123-4567"},
            "skip: no usable contact: phone '(555) 123-4567' is not in E.164 format (e.g. +15551234567)",
        ),
        ("sms", {"phone": "+15551234567"}, "sms"),
        ("both", {"email": "ada@example.com", "phone": "+15551234567"}, "both"),
        ("both", {"email": "ada@example.com"}, "email"),
        ("both", {"phone": "+15551234567"}, "sms"),
        ("both", {}, "skip: no usable contact: no email address; no phone number"),
    ],
    ids=[
        "email-without-address",
        "email",
        "sms-without-phone",
        "sms-not-e164",
        "sms",
        "both",
        "both-email-only",
        "both-phone-only",
        "both-without-contact",
    ],
)
def test_contact_needed_per_channel(client, clock, channel, customer, expected):
    campaign(clock, channel=channel)
    response = post_order(client, order_body(customer={"first_name": "Ada", **customer}))
    if expected.startswith("skip: "):
        assert response.get_json()["created"] == []
        assert skips(response) == {("li_1", expected[6:])}
    else:
        [request_id] = response.get_json()["created"]
        req = request_row(request_id)
        assert req.channel == expected
        assert (req.customer_email, req.customer_phone) == (customer.get("email"), customer.get("phone"))


@pytest.mark.parametrize(
    ("settings", "eligible"),
    [
        ({"include_products": ["p_1"]}, {"li_1"}),
        ({"include_products": ["SKU-2"]}, {"li_2"}),
        ({"exclude_products": ["p_1"]}, {"li_2"}),
        ({"exclude_products": ["SKU-2", "p_1"]}, set()),
    ],
    ids=["include-by-id", "include-by-sku", "exclude-by-id", "exclude-by-sku-and-id"],
)
def test_include_and_exclude_lists_match_product_id_or_sku(client, clock, settings, eligible):
    campaign(clock, **settings)
    body = order_body(items=[item("li_1", "p_1", sku="SKU-1"), item("li_2", "p_2", sku="SKU-2")])
    response = post_order(client, body)
    assert {request_row(i).item_id for i in response.get_json()["created"]} == eligible
    assert {s["item_id"] for s in response.get_json()["skipped"]} == {"li_1", "li_2"} - eligible


def test_minimum_order_total(client, clock):
    campaign(clock, min_order_total="50.00")
    low = post_order(client, order_body("evt_low", order_id="1", total="49.99"))
    assert skips(low) == {("li_1", "order total 49.99 below the minimum 50.00")}
    enough = post_order(client, order_body("evt_ok", order_id="2", total=50))
    assert len(enough.get_json()["created"]) == 1


def test_excluded_customer_tags_match_case_insensitively(client, clock):
    campaign(clock, exclude_tags=["Wholesale"])
    response = post_order(client, order_body(tags=["vip", " WHOLESALE "]))
    assert skips(response) == {("li_1", "customer tag wholesale is excluded")}


def test_opted_out_customer_is_skipped(client, clock):
    campaign(clock)
    db.session.add(OptOut(channel="email", contact="ada@example.com", source="link", created_at=clock()))
    db.session.commit()
    response = post_order(client, order_body(customer={"email": "Ada@Example.com"}))
    assert response.get_json()["created"] == []
    assert skips(response) == {("li_1", "opted out")}


def test_opted_out_of_one_channel_of_a_both_campaign_is_asked_on_the_other(client, clock):
    campaign(clock, channel="both")
    db.session.add(OptOut(channel="sms", contact="+15551234567", source="sms_stop", created_at=clock()))
    db.session.commit()
    [request_id] = post_order(client, order_body()).get_json()["created"]
    assert request_row(request_id).channel == "email"


def test_customer_already_asked_about_the_product_by_the_campaign_in_another_order_is_skipped(client, clock):
    created = campaign(clock)
    post_order(client, order_body("evt_a", order_id="A-1"))
    clock.advance(days=10)
    again = post_order(client, order_body("evt_b", order_id="B-2", items=[item("li_9", "p_1"), item("li_8", "p_2")]))
    assert skips(again) == {("li_9", "customer already asked about this product by this campaign")}
    assert [request_row(i).product_id for i in again.get_json()["created"]] == ["p_2"]
    # Matched by phone too, when the e-mail address changed.
    third = post_order(
        client, order_body("evt_c", order_id="C-3", customer={"email": "new@example.com", "phone": "+15551234567"})
    )
    assert skips(third) == {("li_1", "customer already asked about this product by this campaign")}
    assert created.id == 1


def test_another_customer_buying_the_same_product_is_asked(client, clock):
    campaign(clock)
    post_order(client, order_body("evt_a", order_id="A-1"))
    other = post_order(client, order_body("evt_b", order_id="B-2", customer={"email": "bob@example.com"}))
    assert len(other.get_json()["created"]) == 1


def test_oldest_matching_campaign_wins_and_the_others_record_already_requested(client, clock):
    newer = campaign(clock, name="Newer")  # created first (lower id) …
    clock.advance(days=-30)
    older = campaign(clock, name="Older")  # … but this one is older
    clock.advance(days=30)
    campaign(clock, name="Paused", status="draft")
    campaign(clock, name="Fulfilment", trigger="fulfilled")

    response = post_order(client, order_body())

    [request_id] = response.get_json()["created"]
    assert request_row(request_id).campaign_id == older.id
    assert outcomes() == [
        ("li_1", older.id, "created", None),
        ("li_1", newer.id, "skipped", f"already requested by campaign {older.id}"),
    ]


def test_a_campaign_that_skips_an_item_leaves_it_to_the_next_campaign(client, clock):
    picky = campaign(clock, name="Picky", exclude_products=["p_1"])
    clock.advance(hours=1)
    broad = campaign(clock, name="Broad")
    response = post_order(client, order_body())
    [request_id] = response.get_json()["created"]
    assert request_row(request_id).campaign_id == broad.id
    assert outcomes() == [
        ("li_1", picky.id, "skipped", "product excluded by the campaign"),
        ("li_1", broad.id, "created", None),
    ]
    # The answer says which campaign skipped, so a created item's skip is not a contradiction.
    assert response.get_json()["skipped"] == [
        {"item_id": "li_1", "product_id": "p_1", "campaign_id": picky.id, "reason": "product excluded by the campaign"}
    ]


def test_paused_archived_and_draft_campaigns_ask_nobody(client, clock, cli):
    for status in ("paused", "archived"):
        created = campaign(clock, name=status)
        cli("campaigns", "pause", str(created.id))
        if status == "archived":
            cli("campaigns", "archive", str(created.id))
    campaign(clock, name="draft", status="draft")
    response = post_order(client, order_body())
    assert response.get_json()["created"] == []
    assert skips(response) == {("li_1", "no active campaign with trigger 'delivered'")}


def test_one_request_per_product_however_many_lines_and_units(client, clock):
    campaign(clock)
    body = order_body(
        items=[
            item("li_1", "p_1", quantity=3),
            item("li_2", "p_1", quantity=2, sku="MUG-1-RED"),
            item("li_3", "p_2", quantity=10),
        ]
    )
    response = post_order(client, body)
    created = [request_row(i) for i in response.get_json()["created"]]
    assert [(r.item_id, r.product_id) for r in created] == [("li_1", "p_1"), ("li_3", "p_2")]
    assert skips(response) == {("li_2", "same product as item li_1 (one request per product)")}
    assert len(all_requests()) == 2


def test_every_skip_is_recorded_with_its_reason(client, clock):
    campaign(clock, exclude_products=["p_3"], channel="email")
    body = order_body(
        items=[
            item("li_1", "p_1"),
            item("li_2", "p_2", delivered=False),
            item("li_3", "p_3"),
            item("li_4", "p_1"),
        ]
    )
    post_order(client, body)
    assert [(i, o, r) for i, _, o, r in outcomes()] == [
        ("li_1", "created", None),
        ("li_2", "skipped", "item not delivered yet"),
        ("li_3", "skipped", "product excluded by the campaign"),
        ("li_4", "skipped", "same product as item li_1 (one request per product)"),
    ]
    assert all(reason for _, _, outcome, reason in outcomes() if outcome == "skipped")


def test_a_request_carries_what_the_message_needs(client, clock):
    campaign(clock, delay_days=2)
    body = order_body(items=[item("li_1", "p_1", sku="MUG-1", title="Blue mug", image_url="https://x.example/m.jpg")])
    [request_id] = post_order(client, body).get_json()["created"]
    req = request_row(request_id)
    assert (req.product_title, req.sku, req.product_image_url) == ("Blue mug", "MUG-1", "https://x.example/m.jpg")
    assert (req.customer_first_name, req.customer_last_name, req.customer_email) == ("Ada", "L", "ada@example.com")
    assert (req.status, req.reminder_count, req.attempts, req.sent_at) == ("scheduled", 0, 0, None)


# -- cancellations: the pure rule ---------------------------------------------------------


def test_cancelled_by_counts_events_in_the_order_they_happened():
    from datetime import UTC, datetime

    from app.intake.eligibility import Cancellation, cancellation_reason, cancelled_by
    from app.intake.schema import ItemIn

    def at(hour):
        return datetime(2026, 11, 20, hour, tzinfo=UTC)

    mug = ItemIn("li_1", "p_1", None, "Mug", 1, None, None, None)
    order = Cancellation(None, "cancelled", at(13))
    refund = Cancellation("p_1", "refunded", at(15))
    other = Cancellation("li_2", "refunded", at(15))
    assert cancelled_by(at(12), mug, [order]) == order
    assert cancelled_by(at(13), mug, [order]) == order  # not later: stopped
    assert cancelled_by(at(14), mug, [order]) is None
    assert cancelled_by(at(14), mug, [order, refund]) == refund  # by product id
    assert cancelled_by(at(12), mug, [order, refund]) == order  # the whole order is named first
    assert cancelled_by(at(12), mug, [other]) is None
    assert cancellation_reason(order) == "order cancelled at 2026-11-20T13:00:00Z"
    assert cancellation_reason(refund) == "item refunded at 2026-11-20T15:00:00Z"
