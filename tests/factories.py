"""Builders for test inputs: order webhook bodies and campaigns, through the real services."""

import copy

from app.campaign_admin.services import create_campaign
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
            {
                "id": "li_1",
                "product_id": "p_1",
                "sku": "MUG-1",
                "title": "Blue mug",
                "quantity": 2,
                "price": "19.95",
                "image_url": "https://shop.example/mug.jpg",
                "delivered": True,
            },
        ],
    },
}


def order_body(
    event_id="evt_1",
    *,
    order_id="1001",
    event_type="order.delivered",
    occurred_at="2026-11-20T12:00:00Z",
    items=None,
    customer=None,
    **order_fields,
):
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
    return {
        "id": item_id,
        "product_id": product_id,
        "title": f"Product {product_id}",
        "quantity": 1,
        "delivered": True,
        **fields,
    }


def campaign(clock, **settings):
    settings.setdefault("name", "Video reviews")
    created = create_campaign(clock(), **settings)
    db.session.commit()
    return created


# -- helpers for the lifecycle engine tests ---------------------------------------------


def post_order(client, body=None, **kwargs):
    """POST a body (dict → JSON, bytes → raw) to the order webhook."""
    import json as _json

    body = order_body() if body is None else body
    if isinstance(body, (dict, list)):
        data = _json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body
    headers = kwargs.pop("headers", {})
    content_type = kwargs.pop("content_type", "application/json")
    return client.post("/webhooks/orders", data=data, content_type=content_type, headers=headers, **kwargs)


def sign(secret, raw):
    """The X-Webhook-Signature header value for a raw body."""
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def row_counts():
    """Rows per table of the whole database (every table, not only the ones we expect)."""
    from sqlalchemy import inspect, text

    db.session.rollback()
    names = inspect(db.engine).get_table_names()  # SQLite's own tables (sqlite_…) left out
    counts = {name: db.session.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar() for name in names}
    db.session.rollback()
    return counts


def fresh(model, ident):
    """A row as the database has it now (not as this session remembers it)."""
    db.session.expire_all()
    return db.session.get(model, ident)


def request_row(request_id):
    from app.lifecycle.models import TestimonialRequest

    return fresh(TestimonialRequest, request_id)


def all_requests():
    from sqlalchemy import select

    from app.lifecycle.models import TestimonialRequest

    db.session.expire_all()
    return db.session.scalars(select(TestimonialRequest).order_by(TestimonialRequest.id)).all()


def event_types(request_id):
    from sqlalchemy import select

    from app.lifecycle.models import TestimonialRequestEvent

    db.session.expire_all()
    return db.session.scalars(
        select(TestimonialRequestEvent.type)
        .where(TestimonialRequestEvent.request_id == request_id)
        .order_by(TestimonialRequestEvent.id)
    ).all()


def events_of(request_id, type_=None):
    from sqlalchemy import select

    from app.lifecycle.models import TestimonialRequestEvent

    db.session.expire_all()
    query = select(TestimonialRequestEvent).where(TestimonialRequestEvent.request_id == request_id)
    if type_:
        query = query.where(TestimonialRequestEvent.type == type_)
    return db.session.scalars(query.order_by(TestimonialRequestEvent.id)).all()


def outbox(request_id=None, outcome="accepted"):
    """Messages the outbox provider stored (accepted ones unless told otherwise)."""
    from sqlalchemy import select

    from app.outbox.models import OutboxMessage

    db.session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if request_id is not None:
        query = query.where(OutboxMessage.request_id == request_id)
    if outcome is not None:
        query = query.where(OutboxMessage.outcome == outcome)
    return db.session.scalars(query).all()


def tick(clock):
    """One dispatch tick at the clock's current time (what the scheduler job runs)."""
    from app.lifecycle.dispatch import dispatch_due

    return dispatch_due(clock())


def create_request(client, clock, *, delay_days=0, body=None, **campaign_settings):
    """An active campaign and one request created through the webhook; returns its id."""
    campaign(clock, delay_days=delay_days, **campaign_settings)
    response = post_order(client, body)
    assert response.status_code == 202, response.get_json()
    [request_id] = response.get_json()["created"]
    return request_id


def sent_request(client, clock, **kwargs):
    """A request whose initial message went out at the clock's current time."""
    request_id = create_request(client, clock, **kwargs)
    report = tick(clock)
    assert report.sent == 1, report
    return request_id


def csrf_token_for(client, url):
    import re

    page = client.get(url)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no csrf_token on {url} ({page.status_code})"
    return match.group(1)


def submit_testimonial(client, token, *, csrf=None, text="Love it", consent="yes", video=None, **form):
    """POST the customer's form on /r/<token> like a browser (CSRF token from the page).

    ``video`` is (stream, filename, content type)."""
    url = f"/r/{token}"
    data = {"csrf_token": csrf or csrf_token_for(client, url), "text": text, **form}
    if consent is not None:
        data["consent"] = consent
    if video is not None:
        from werkzeug.datastructures import FileStorage

        stream, filename, content_type = video
        data["video"] = FileStorage(stream, filename=filename, content_type=content_type)
    # Encoded in memory: the test client spools big bodies to a temporary file it never
    # closes (a ResourceWarning, an error under filterwarnings=error).
    from werkzeug.test import encode_multipart

    boundary, body = encode_multipart(data)
    return client.post(url, data=body, content_type=f'multipart/form-data; boundary="{boundary}"')
