"""Builders for test inputs: order webhook bodies and campaigns, through the real services."""

import copy

from app.campaigns.services import create_campaign
from app.extensions import db

ORDER = {
    "event_id": "evt_1",
    "event_type": "order.delivered",
    "occurred_at": "2026-11-20T12:00:00Z",
    "order": {
        "id": "1001",
        "total": "59.90",
        "currency": "USD",
        "tags": ["vip"],
        "customer": {"email": "ada@example.com", "phone": "+15551234567", "first_name": "Ada", "last_name": "L"},
        "items": [
            {"id": "li_1", "product_id": "p_1", "sku": "MUG-1", "title": "Blue mug", "quantity": 2,
             "price": "19.95", "image_url": "https://shop.example/mug.jpg", "delivered": True},
        ],
    },
}


def order_body(event_id="evt_1", *, order_id="1001", event_type="order.delivered",
               occurred_at="2026-11-20T12:00:00Z", items=None, customer=None, **order_fields):
    body = copy.deepcopy(ORDER)
    body["event_id"] = event_id
    body["event_type"] = event_type
    body["occurred_at"] = occurred_at
    body["order"]["id"] = order_id
    if items is not None:
        body["order"]["items"] = items
    if customer is not None:
        body["order"]["customer"] = customer
    body["order"].update(order_fields)
    return body


def item(item_id="li_1", product_id="p_1", **fields):
    return {"id": item_id, "product_id": product_id, "title": f"Product {product_id}", "quantity": 1,
            "delivered": True, **fields}


def campaign(clock, **settings):
    settings.setdefault("name", "Video reviews")
    created = create_campaign(clock(), **settings)
    db.session.commit()
    return created
