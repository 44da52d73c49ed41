"""POST /webhooks/shopify with realistic payloads, signed in the test the way Shopify signs
them (base64 HMAC-SHA256 of the raw body). Payloads follow the shapes of Shopify's REST
webhook examples (orders, fulfillments, fulfillment events, refunds)."""

import base64
import copy
import hashlib
import hmac
import json
import uuid

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.intake.models import OrderEvent, OrderEventItem
from app.lifecycle.models import TestimonialRequest
from app.shopify.mapping import best_phone
from tests.factories import campaign

SECRET = "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"
SHOP = "ada-ceramics.myshopify.com"
ORDER_ID = 5940139491234
MUG, TEE, WRAP, CARD = 13370001, 13370002, 13370003, 13370004  # line item ids


def money(amount):
    return {
        "shop_money": {"amount": amount, "currency_code": "USD"},
        "presentment_money": {"amount": amount, "currency_code": "USD"},
    }


def line_item(
    line_id, product_id, title, sku, price, *, quantity=1, fulfillment_status=None, gift_card=False, variant_id=None
):
    return {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "product_id": product_id,
        "variant_id": variant_id or (product_id and product_id + 100),
        "title": title,
        "variant_title": "Default",
        "name": f"{title} - Default",
        "sku": sku,
        "vendor": "Ada Ceramics",
        "quantity": quantity,
        "current_quantity": quantity,
        "fulfillable_quantity": 0 if fulfillment_status else quantity,
        "fulfillment_status": fulfillment_status,
        "fulfillment_service": "manual",
        "gift_card": gift_card,
        "grams": 350,
        "price": price,
        "price_set": money(price),
        "product_exists": product_id is not None,
        "properties": [],
        "requires_shipping": not gift_card,
        "taxable": True,
        "total_discount": "0.00",
        "total_discount_set": money("0.00"),
        "discount_allocations": [],
        "duties": [],
        "tax_lines": [],
    }


LINES = {
    MUG: line_item(MUG, 632910392, "Speckled stoneware mug", "MUG-SPK", "28.00"),
    TEE: line_item(TEE, 632910393, "Studio tee", "TEE-M", "35.00"),
    WRAP: line_item(WRAP, None, "Gift wrapping", "", "4.00"),  # a custom line item
    CARD: line_item(CARD, 632910394, "Gift card", "", "25.00", gift_card=True),
}

DESTINATION = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address1": "12 Analytical Row",
    "address2": None,
    "city": "London",
    "zip": "N1 9GU",
    "province": None,
    "country": "United Kingdom",
    "country_code": "GB",
    "province_code": None,
    "phone": "+44 20 7946 0958",
    "company": None,
    "name": "Ada Lovelace",
    "latitude": None,
    "longitude": None,
}


def fulfillment(fulfillment_id, lines, *, shipment_status=None, status="success"):
    return {
        "id": fulfillment_id,
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
        "order_id": ORDER_ID,
        "status": status,
        "shipment_status": shipment_status,
        "created_at": "2026-11-17T09:15:00-05:00",
        "updated_at": "2026-11-19T16:40:00-05:00",
        "service": "manual",
        "location_id": 67756425433,
        "origin_address": None,
        "email": "ada@example.com",
        "destination": DESTINATION,
        "name": f"#1001.{fulfillment_id % 10}",
        "tracking_company": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "tracking_numbers": ["1Z999AA10123456784"],
        "tracking_url": "https://www.ups.com/WebTracking?trackingNumber=1Z999AA10123456784",
        "tracking_urls": ["https://www.ups.com/WebTracking?trackingNumber=1Z999AA10123456784"],
        "receipt": {},
        "line_items": [{**LINES[i], "fulfillment_status": "fulfilled"} for i in lines],
    }


def order(*, lines=(MUG, TEE, WRAP, CARD), fulfillments=(), fulfilled=None, **fields):
    body = {
        "id": ORDER_ID,
        "admin_graphql_api_id": f"gid://shopify/Order/{ORDER_ID}",
        "name": "#1001",
        "order_number": 1001,
        "email": "ada@example.com",
        "contact_email": "ada@example.com",
        "phone": None,
        "created_at": "2026-11-15T10:30:00-05:00",
        "processed_at": "2026-11-15T10:30:00-05:00",
        "updated_at": "2026-11-17T09:15:00-05:00",
        "cancelled_at": None,
        "cancel_reason": None,
        "closed_at": None,
        "currency": "USD",
        "presentment_currency": "USD",
        "total_price": "92.00",
        "subtotal_price": "92.00",
        "total_tax": "0.00",
        "financial_status": "paid",
        "fulfillment_status": "fulfilled",
        "tags": "Repeat, wholesale",
        "test": False,
        "customer": {
            "id": 115310627314723954,
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+15551234567",
            "tags": "newsletter",
            "state": "enabled",
            "currency": "USD",
            "admin_graphql_api_id": "gid://shopify/Customer/115310627314723954",
        },
        "shipping_address": DESTINATION,
        "billing_address": DESTINATION,
        "line_items": [
            {**LINES[i], "fulfillment_status": "fulfilled" if fulfilled is None or i in fulfilled else None}
            for i in lines
        ],
        "fulfillments": list(fulfillments),
        "refunds": [],
        "shipping_lines": [],
        "note": None,
    }
    body.update(fields)
    return body


def fulfillment_event(fulfillment_id, status="delivered", happened_at="2026-11-20T14:03:00-05:00"):
    return {
        "id": 944956391,
        "admin_graphql_api_id": "gid://shopify/FulfillmentEvent/944956391",
        "fulfillment_id": fulfillment_id,
        "order_id": ORDER_ID,
        "shop_id": 548380009,
        "status": status,
        "message": "Delivered, front door",
        "happened_at": happened_at,
        "created_at": happened_at,
        "updated_at": happened_at,
        "estimated_delivery_at": None,
        "city": "London",
        "province": None,
        "country": "GB",
        "zip": None,
        "address1": None,
        "latitude": None,
        "longitude": None,
    }


def refund(line_ids, refund_id=509562969):
    return {
        "id": refund_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "order_id": ORDER_ID,
        "created_at": "2026-11-21T11:00:00-05:00",
        "processed_at": "2026-11-21T11:00:00-05:00",
        "note": "Arrived chipped",
        "user_id": 548380009,
        "restock": False,
        "duties": [],
        "total_duties_set": money("0.00"),
        "order_adjustments": [],
        "refund_line_items": [
            {
                "id": 104689539 + n,
                "line_item_id": line_id,
                "quantity": 1,
                "location_id": 40642626,
                "restock_type": "return",
                "subtotal": 35.0,
                "total_tax": 0.0,
                "subtotal_set": money("35.00"),
                "total_tax_set": money("0.00"),
                "line_item": LINES[line_id],
            }
            for n, line_id in enumerate(line_ids)
        ],
        "transactions": [
            {
                "id": 245135925,
                "order_id": ORDER_ID,
                "kind": "refund",
                "gateway": "bogus",
                "status": "success",
                "amount": "35.00",
                "currency": "USD",
            }
        ],
    }


def sign(body, secret=SECRET):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def shop_app(app_factory):
    app = app_factory(SHOPIFY_WEBHOOK_SECRET=SECRET)
    with app.app_context():
        yield app


@pytest.fixture
def send(shop_app):
    client = shop_app.test_client()

    def post(topic, payload, *, webhook_id=None, event_id=None, signature=None, body=None, headers=None):
        raw = body if body is not None else json.dumps(payload).encode()
        sent = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(raw) if signature is None else signature,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-API-Version": "2026-10",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": "2026-11-20T19:03:01.123Z",
            **(headers or {}),
        }
        sent = {k: v for k, v in sent.items() if v is not None}
        return client.post("/webhooks/shopify", data=raw, headers=sent)

    return post


def requests_by_item():
    rows = db.session.scalars(select(TestimonialRequest).order_by(TestimonialRequest.id)).all()
    return {int(r.item_id): r for r in rows}


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


# -- fulfilled trigger ----------------------------------------------------------------------


def test_orders_fulfilled_asks_about_every_product_line(send, clock):
    campaign(clock, trigger="fulfilled", delay_days=3)
    response = send(
        "orders/fulfilled",
        order(fulfillments=[fulfillment(4213857714393, [MUG, TEE, WRAP, CARD])]),
        webhook_id="b54557e4-8a5f-4f7d-9a1b-cd043aa1e001",
        event_id="98880550-7158-44d4-b7cd-2c97c8a091b5",
    )
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert answer["status"] == "accepted" and answer["duplicate"] is False
    assert answer["event_id"] == "shopify:b54557e4-8a5f-4f7d-9a1b-cd043aa1e001"
    assert answer["order_id"] == str(ORDER_ID) and answer["topic"] == "orders/fulfilled"
    assert len(answer["created"]) == 2
    assert answer["summary"] == "2 created, 2 skipped"
    assert {(s["item_id"], s["reason"]) for s in answer["skipped"]} == {
        (str(WRAP), "custom line item without a product"),
        (str(CARD), "gift card"),
    }

    by_item = requests_by_item()
    assert set(by_item) == {MUG, TEE}
    mug = by_item[MUG]
    assert (mug.product_id, mug.sku, mug.product_title) == ("632910392", "MUG-SPK", "Speckled stoneware mug")
    assert (mug.customer_email, mug.customer_phone, mug.customer_first_name) == (
        "ada@example.com",
        "+15551234567",
        "Ada",
    )
    # Fulfilled when its fulfillment was created (09:15 EST = 14:15 UTC), asked 3 days later.
    assert mug.trigger_at.isoformat() == "2026-11-17T14:15:00+00:00"
    assert mug.next_send_at.isoformat() == "2026-11-20T14:15:00+00:00"

    record = db.session.scalar(select(OrderEvent))
    assert (record.source, record.topic, record.shop_domain) == ("shopify", "orders/fulfilled", SHOP)
    assert record.source_event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert json.loads(record.payload)["id"] == ORDER_ID  # exactly what Shopify sent


def test_orders_partially_fulfilled_asks_only_about_shipped_lines(send, clock):
    campaign(clock, trigger="fulfilled")
    response = send(
        "orders/partially_fulfilled", order(lines=(MUG, TEE), fulfilled={MUG}, fulfillment_status="partial")
    )
    assert response.status_code == 202
    assert set(requests_by_item()) == {MUG}
    assert [(s["item_id"], s["reason"]) for s in response.get_json()["skipped"]] == [(str(TEE), "not fulfilled yet")]
    # The rest ships: orders/fulfilled adds the tee; the mug is not asked twice.
    response = send("orders/fulfilled", order(lines=(MUG, TEE)))
    assert response.status_code == 202
    assert set(requests_by_item()) == {MUG, TEE}
    assert any(
        s["item_id"] == str(MUG) and s["reason"].startswith("already requested") for s in response.get_json()["skipped"]
    )


def test_the_same_campaign_rules_decide_as_for_the_generic_webhook(send, clock):
    campaign(clock, trigger="fulfilled", exclude_tags=["wholesale"])
    response = send("orders/fulfilled", order(lines=(MUG,)))
    assert response.status_code == 202
    [skip] = response.get_json()["skipped"]
    assert skip["reason"] == "customer tag wholesale is excluded"
    assert count(TestimonialRequest) == 0


# -- delivered trigger ----------------------------------------------------------------------


def test_partial_fulfillment_delivered_asks_only_about_its_items(send, clock):
    campaign(clock, trigger="delivered", delay_days=2)
    first = fulfillment(4213857714393, [MUG])
    response = send("fulfillments/create", first)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert "not delivered" in response.get_json()["reason"]
    assert count(TestimonialRequest) == 0

    response = send("fulfillments/update", {**first, "shipment_status": "delivered"})
    assert response.status_code == 202, response.get_json()
    assert set(requests_by_item()) == {MUG}  # the tee is in another parcel
    mug = requests_by_item()[MUG]
    assert mug.customer_email == "ada@example.com"
    assert mug.customer_phone == "+442079460958"  # from the destination, without spaces
    assert mug.trigger_at.isoformat() == "2026-11-19T21:40:00+00:00"  # the update's time

    response = send("fulfillments/create", fulfillment(4213857714394, [TEE], shipment_status="delivered"))
    assert response.status_code == 202
    assert set(requests_by_item()) == {MUG, TEE}


def test_delivered_fulfillment_event_uses_the_items_of_the_fulfillment_seen_earlier(send, clock):
    campaign(clock, trigger="delivered", delay_days=0)
    send("orders/create", order(fulfillments=[]))  # kept: the customer's details and tags
    send("fulfillments/create", fulfillment(4213857714393, [MUG, WRAP]))
    send("fulfillments/create", fulfillment(4213857714394, [TEE]))

    response = send("fulfillment_events/create", fulfillment_event(4213857714393))
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert len(answer["created"]) == 1
    assert [s["reason"] for s in answer["skipped"]] == ["custom line item without a product"]
    mug = requests_by_item()[MUG]
    assert set(requests_by_item()) == {MUG}
    assert mug.trigger_at.isoformat() == "2026-11-20T19:03:00+00:00"  # happened_at, 14:03 EST
    assert (mug.customer_phone, mug.customer_first_name) == ("+15551234567", "Ada")  # the order's customer

    # In-transit events start nothing and say so.
    response = send("fulfillment_events/create", fulfillment_event(4213857714394, status="in_transit"))
    assert response.status_code == 200
    assert response.get_json()["reason"] == "fulfillment event status is 'in_transit'; only 'delivered' starts requests"
    assert set(requests_by_item()) == {MUG}


def test_delivered_event_items_can_come_from_an_order_payload(send, clock):
    campaign(clock, trigger="delivered", delay_days=0)
    send(
        "orders/partially_fulfilled",
        order(lines=(MUG, TEE), fulfilled={TEE}, fulfillments=[fulfillment(4213857714394, [TEE])]),
    )
    response = send("fulfillment_events/create", fulfillment_event(4213857714394))
    assert response.status_code == 202
    assert set(requests_by_item()) == {TEE}


def test_a_delivered_event_before_its_fulfillment_waits_for_the_items(send, clock):
    campaign(clock, trigger="delivered", delay_days=0)
    response = send("fulfillment_events/create", fulfillment_event(4213857714393))
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["created"] == []
    assert answer["summary"].startswith("waiting for the items of fulfillment 4213857714393")
    assert "fulfillments/create" in answer["skipped"][0]["reason"]

    response = send("fulfillments/create", fulfillment(4213857714393, [MUG, TEE]))  # no shipment_status yet
    assert response.status_code == 202, response.get_json()
    assert set(requests_by_item()) == {MUG, TEE}
    assert requests_by_item()[MUG].trigger_at.isoformat() == "2026-11-20T19:03:00+00:00"  # when it was delivered
    waiting = db.session.scalar(select(OrderEvent).where(OrderEvent.topic == "fulfillment_events/create"))
    assert waiting.summary.startswith("items found in fulfillments/create")


# -- cancellations and refunds --------------------------------------------------------------


def delivered_mug_and_tee(send, clock):
    campaign(clock, trigger="fulfilled", delay_days=5)
    assert send("orders/fulfilled", order(lines=(MUG, TEE))).status_code == 202
    assert set(requests_by_item()) == {MUG, TEE}


def test_orders_cancelled_cancels_every_request_of_the_order(send, clock):
    delivered_mug_and_tee(send, clock)
    response = send(
        "orders/cancelled",
        order(
            lines=(MUG, TEE),
            cancelled_at="2026-11-18T08:00:00-05:00",
            cancel_reason="customer",
            financial_status="refunded",
        ),
    )
    assert response.status_code == 202
    assert len(response.get_json()["cancelled"]) == 2
    assert {r.status for r in requests_by_item().values()} == {"cancelled"}
    event = requests_by_item()[MUG].events[-1]
    assert event.type == "cancelled" and event.detail.startswith("order cancelled")
    # Later fulfillment news of a cancelled order starts nothing.
    response = send("fulfillments/update", fulfillment(4213857714393, [MUG], shipment_status="delivered"))
    assert response.get_json()["status"] == "ignored"
    assert response.get_json()["reason"] == f"order {ORDER_ID} is cancelled"


def test_a_partial_refund_cancels_only_the_refunded_items(send, clock):
    delivered_mug_and_tee(send, clock)
    response = send("refunds/create", refund([TEE]))
    assert response.status_code == 202
    assert response.get_json()["cancelled"] == [requests_by_item()[TEE].id]
    by_item = requests_by_item()
    assert (by_item[MUG].status, by_item[TEE].status) == ("scheduled", "cancelled")
    assert by_item[TEE].events[-1].detail.startswith("order refunded")


def test_a_full_refund_cancels_everything(send, clock):
    delivered_mug_and_tee(send, clock)
    response = send("refunds/create", refund([MUG, TEE]))
    assert len(response.get_json()["cancelled"]) == 2
    assert {r.status for r in requests_by_item().values()} == {"cancelled"}


def test_an_amount_only_refund_cancels_nothing(send, clock):
    delivered_mug_and_tee(send, clock)
    response = send("refunds/create", refund([]))
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert "lists no line items" in response.get_json()["reason"]
    assert {r.status for r in requests_by_item().values()} == {"scheduled"}


def test_a_refunded_line_is_not_asked_about_when_it_is_delivered_later(send, clock):
    campaign(clock, trigger="delivered", delay_days=0)
    send("refunds/create", refund([TEE]))
    response = send("fulfillments/create", fulfillment(4213857714393, [MUG, TEE], shipment_status="delivered"))
    assert set(requests_by_item()) == {MUG}
    assert [(s["item_id"], s["product_id"], s["reason"]) for s in response.get_json()["skipped"]] == [
        (str(TEE), "632910393", "refunded")
    ]


def test_a_cancelled_order_is_not_asked_about_by_an_older_fulfilled_webhook_arriving_later(send, clock):
    # Failed before the fix: the retried orders/fulfilled (its copy of the order taken
    # before the cancellation, so no cancelled_at) made two requests.
    campaign(clock, trigger="fulfilled", delay_days=0)
    cancelled = send("orders/cancelled", order(lines=(MUG, TEE), cancelled_at="2026-11-18T08:00:00-05:00"))
    assert cancelled.status_code == 202 and cancelled.get_json()["skipped"][0]["reason"] == "no requests for this order"

    response = send("orders/fulfilled", order(lines=(MUG, TEE), fulfillments=[fulfillment(4213857714393, [MUG, TEE])]))

    assert response.status_code == 202
    reason = "order cancelled at 2026-11-18T13:00:00Z"
    assert [(s["item_id"], s["reason"]) for s in response.get_json()["skipped"]] == [
        (str(MUG), reason),
        (str(TEE), reason),
    ]
    assert requests_by_item() == {}
    record = db.session.scalar(select(OrderEvent).where(OrderEvent.topic == "orders/fulfilled"))
    assert {i.reason for i in record.items} == {reason}


def test_a_refund_received_before_the_fulfilled_webhook_stops_its_lines(send, clock):
    campaign(clock, trigger="fulfilled", delay_days=0)
    send("refunds/create", refund([TEE]) | {"created_at": "2026-11-18T08:00:00-05:00"})
    response = send("orders/fulfilled", order(lines=(MUG, TEE), fulfillments=[fulfillment(4213857714393, [MUG, TEE])]))
    assert set(requests_by_item()) == {MUG}
    assert [(s["item_id"], s["reason"]) for s in response.get_json()["skipped"]] == [
        (str(TEE), "item refunded at 2026-11-18T13:00:00Z")
    ]


# -- replays, signatures, bad input ---------------------------------------------------------


def test_a_replayed_webhook_gets_the_same_answer_and_writes_nothing(send, clock):
    campaign(clock, trigger="fulfilled")
    payload = order(lines=(MUG, TEE))
    first = send("orders/fulfilled", payload, webhook_id="wh-1", event_id="ev-1")
    assert first.status_code == 202
    before = (count(OrderEvent), count(OrderEventItem), count(TestimonialRequest))
    again = send("orders/fulfilled", payload, webhook_id="wh-1", event_id="ev-1")
    assert again.status_code == 200
    assert {**again.get_json(), "duplicate": False} == first.get_json()
    assert again.get_json()["duplicate"] is True
    # A second subscription to the same topic: new webhook id, same event id.
    other = send("orders/fulfilled", payload, webhook_id="wh-2", event_id="ev-1")
    assert other.get_json()["duplicate"] is True
    assert (count(OrderEvent), count(OrderEventItem), count(TestimonialRequest)) == before


def test_a_replayed_ignored_webhook_is_ignored_once(send):
    payload = {"id": 632910392, "title": "Speckled stoneware mug"}
    first = send("products/update", payload, webhook_id="wh-p")
    again = send("products/update", payload, webhook_id="wh-p")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["reason"] == first.get_json()["reason"]
    assert count(OrderEvent) == 1


@pytest.mark.parametrize(
    "signature",
    [
        "",
        None,
        sign(b"another body"),
        sign(json.dumps(order()).encode(), secret="wrong-secret"),
        "not base64 ✓",
    ],
)
def test_a_missing_or_wrong_signature_is_refused_and_writes_nothing(send, clock, signature):
    campaign(clock, trigger="fulfilled")
    body = json.dumps(order()).encode()
    headers = {"X-Shopify-Hmac-Sha256": None} if signature is None else {}
    response = send("orders/fulfilled", None, body=body, signature=signature or "", headers=headers)
    assert response.status_code == 401
    assert "X-Shopify-Hmac-Sha256" in response.get_json()["error"]
    assert (count(OrderEvent), count(TestimonialRequest)) == (0, 0)


def test_without_a_configured_secret_nothing_is_accepted(app_factory, clock):
    app = app_factory(SHOPIFY_WEBHOOK_SECRET=None)
    with app.app_context():
        body = json.dumps(order()).encode()
        response = app.test_client().post(
            "/webhooks/shopify",
            data=body,
            headers={
                "X-Shopify-Topic": "orders/fulfilled",
                "X-Shopify-Hmac-Sha256": sign(body),
                "X-Shopify-Webhook-Id": "wh-1",
            },
        )
        assert response.status_code == 503
        assert "SHOPIFY_WEBHOOK_SECRET" in response.get_json()["error"]
        assert count(OrderEvent) == 0


def test_an_unknown_topic_is_acknowledged_and_logged_as_ignored(send):
    response = send("products/update", {"id": 632910392, "title": "Speckled stoneware mug"})
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["status"] == "ignored"
    assert answer["reason"].startswith("topic 'products/update' is not used by this app")
    record = db.session.scalar(select(OrderEvent))
    assert (record.event_type, record.topic, record.summary) == ("ignored", "products/update", answer["reason"])
    assert record.processing_ms is None  # created nothing: not part of the creation-time SLO


@pytest.mark.parametrize(
    ("topic", "body", "message"),
    [
        ("orders/fulfilled", b'{"id": 5940139491234, "line_items": [', "malformed JSON"),
        ("orders/fulfilled", b"\xff\xfe{}", "malformed JSON"),
        ("orders/fulfilled", b"[1, 2]", "the body must be a JSON object"),
        ("orders/fulfilled", json.dumps({"line_items": []}).encode(), "orders/fulfilled payload: id is required"),
        (
            "orders/fulfilled",
            json.dumps({"id": 1, "line_items": [{"product_id": 2}]}).encode(),
            "line_items[0].id is required",
        ),
        ("refunds/create", json.dumps({"id": 1}).encode(), "order_id is required"),
        (
            "fulfillment_events/create",
            json.dumps({"order_id": 1, "status": "delivered"}).encode(),
            "fulfillment_id is required",
        ),
    ],
)
def test_a_payload_that_cannot_be_read_is_a_400_and_writes_nothing(send, clock, topic, body, message):
    campaign(clock, trigger="fulfilled")
    response = send(topic, None, body=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert (count(OrderEvent), count(TestimonialRequest)) == (0, 0)


@pytest.mark.parametrize("missing", ["X-Shopify-Topic", "X-Shopify-Webhook-Id"])
def test_required_headers(send, missing):
    response = send("orders/fulfilled", order(), headers={missing: None})
    assert response.status_code == 400
    assert response.get_json() == {"error": f"header {missing} is required", "field": missing}
    assert count(OrderEvent) == 0


@pytest.mark.parametrize("header", ["X-Shopify-Topic", "X-Shopify-Webhook-Id"])
def test_an_overlong_header_is_named_as_too_long_not_missing(send, header):
    response = send("orders/fulfilled", order(), headers={header: "x" * 201})
    assert response.status_code == 400
    assert response.get_json() == {"error": f"header {header} is longer than 200 characters", "field": header}
    assert count(OrderEvent) == 0


YEAR_1 = "0001-01-01T00:00:00+01:00"  # converting it to UTC overflows


@pytest.mark.parametrize(
    ("topic", "payload", "field"),
    [
        ("orders/fulfilled", lambda: order(updated_at=YEAR_1), "updated_at"),
        (
            "orders/fulfilled",
            lambda: order(fulfillments=[fulfillment(4213857714393, [MUG]) | {"created_at": YEAR_1}]),
            "fulfillments[0].created_at",
        ),
        ("orders/cancelled", lambda: order(cancelled_at=YEAR_1), "cancelled_at"),
        ("orders/cancelled", lambda: order(cancelled_at="9999-12-31T23:59:59-01:00"), "cancelled_at"),
        ("refunds/create", lambda: refund([TEE]) | {"created_at": "1969-12-31T23:59:59Z"}, "created_at"),
        (
            "fulfillments/update",
            lambda: fulfillment(4213857714393, [MUG], shipment_status="delivered") | {"updated_at": YEAR_1},
            "updated_at",
        ),
        ("fulfillment_events/create", lambda: fulfillment_event(4213857714393, happened_at=YEAR_1), "happened_at"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_time_outside_1970_to_9000_is_a_400_naming_the_field(send, clock, topic, payload, field):
    # Failed before the fix: 500 (OverflowError), so Shopify retried the webhook for hours.
    campaign(clock, trigger="fulfilled")
    response = send(topic, payload())
    assert response.status_code == 400, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["field"] == field and "outside the supported years 1970–9000" in answer["error"]
    assert count(OrderEvent) == 0 and count(TestimonialRequest) == 0


def test_an_out_of_range_triggered_at_header_is_a_400_naming_it(send):
    response = send("orders/fulfilled", order(), headers={"X-Shopify-Triggered-At": YEAR_1})
    assert response.status_code == 400
    assert response.get_json()["field"] == "X-Shopify-Triggered-At"
    assert count(OrderEvent) == 0
    # A header that is not a time at all is no reason to refuse a real order.
    assert send("orders/fulfilled", order(), headers={"X-Shopify-Triggered-At": "soon"}).status_code == 202


def test_a_delivery_whose_send_time_passes_the_supported_years_is_refused(send, clock):
    campaign(clock, trigger="delivered", delay_days=30)
    response = send(
        "fulfillments/create",
        fulfillment(4213857714393, [MUG], shipment_status="delivered") | {"updated_at": "8999-12-31T00:00:00Z"},
    )
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["field"] == "occurred_at" and "send time after 9000" in answer["error"]
    assert count(OrderEvent) == 0 and count(TestimonialRequest) == 0


def test_customer_contact_falls_back_to_the_order_and_addresses(send, clock):
    campaign(clock, trigger="fulfilled", channel="both")
    payload = order(lines=(MUG,))
    payload["customer"] = None  # a guest checkout
    payload["shipping_address"] = {**DESTINATION, "phone": "+1 (555) 625-1199", "first_name": "Grace"}
    response = send("orders/fulfilled", payload)
    assert response.status_code == 202
    mug = requests_by_item()[MUG]
    assert (mug.customer_email, mug.customer_phone, mug.customer_first_name) == (
        "ada@example.com",
        "+15556251199",
        "Grace",
    )
    assert mug.channel == "both"


def test_best_phone_prefers_an_e164_number_and_keeps_a_bad_one_to_explain():
    assert best_phone([None, "", "555-625-1199", "+44 20 7946 0958"]) == "+442079460958"
    assert best_phone(["555-625-1199"]) == "555-625-1199"
    assert best_phone([None, 5551234]) is None


def test_orders_payload_copy_is_not_mutated_by_the_builders():
    payload = order()
    snapshot = copy.deepcopy(payload)
    from app.shopify.mapping import WebhookMeta, route

    route(WebhookMeta("orders/fulfilled", "w", None, SHOP, None, None), payload)
    assert payload == snapshot


def test_the_shopify_log_lists_every_webhook_with_its_outcome(send, shop_app, clock):
    campaign(clock, trigger="fulfilled")
    send("orders/fulfilled", order(lines=(MUG, WRAP)))
    send("products/update", {"id": 1})
    runner = shop_app.test_cli_runner()
    result = runner.invoke(args=["shopify", "log", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["topic"], r["summary"]) for r in rows] == [
        ("products/update", rows[0]["summary"]),
        ("orders/fulfilled", "1 created, 1 skipped"),
    ]
    assert rows[0]["summary"].startswith("topic 'products/update' is not used")
    text = runner.invoke(args=["shopify", "log", "--order", str(ORDER_ID)]).output
    assert "orders/fulfilled" in text and "custom line item without a product" in text
    assert "products/update" not in text
