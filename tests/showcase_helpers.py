"""Testimonials made through the real paths: an order webhook per customer, the customer's
form on their link; then moderated through the services the dashboard uses."""

import io
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.testimonials.models import Testimonial
from tests.factories import campaign, item, order_body, post_order, submit_testimonial, tick

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free" + b"\x00" * 200


@dataclass
class Made:
    id: int
    request_id: int
    public_id: str
    product_id: str
    email: str


def make_testimonial(
    client, clock, n, *, product_id="p_1", video=True, text=None, customer=None, send_first=False, **form
):
    """Customer ``n`` orders ``product_id`` and sends a testimonial (a video unless told)."""
    customer = customer or {
        "email": f"customer{n}@example.com",
        "phone": f"+1555000{n:04d}",
        "first_name": f"Name{n}",
        "last_name": f"Surname{n}",
    }
    body = order_body(
        f"evt_{n}",
        order_id=f"order-{n}",
        items=[item(f"li_{n}", product_id, title=f"Product {product_id}")],
        customer=customer,
    )
    response = post_order(client, body)
    assert response.status_code == 202, response.get_json()
    [request_id] = response.get_json()["created"]
    if send_first:  # the first message goes out before the customer answers
        tick(clock)
        db.session.commit()
    token = db.session.get(TestimonialRequest, request_id).token
    db.session.rollback()  # every transaction takes the write lock (app/database.py): let the app in
    upload = (io.BytesIO(MP4), "clip.mp4", "video/mp4") if video else None
    answer = submit_testimonial(client, token, text=text or f"Testimonial number {n}", video=upload, **form)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    db.session.expire_all()
    t = db.session.scalar(select(Testimonial).where(Testimonial.request_id == request_id))
    made = Made(t.id, request_id, t.public_id, product_id, customer.get("email"))
    db.session.rollback()
    return made


def make_many(client, clock, count, **kwargs):
    return [make_testimonial(client, clock, n, **kwargs) for n in range(1, count + 1)]


def active_campaign(clock, **settings):
    return campaign(clock, delay_days=0, **settings)
