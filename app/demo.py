"""Demo data for ``make run``: a campaign and a few weeks of realistic history.

History is made by the real code paths (intake, dispatch ticks at past times, clicks and
submissions), so every row the demo shows is one the product could have produced.
"""

import os
import random
import secrets
from datetime import timedelta

from sqlalchemy import func, select

from app.auth.models import Admin
from app.auth.services import create_admin
from app.campaigns.models import Campaign
from app.campaigns.services import create_campaign
from app.extensions import db
from app.intake.schema import parse_order_event
from app.intake.services import ingest_with_retry
from app.lifecycle.dispatch import dispatch_due
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import record_click, record_submission

PRODUCTS = [
    ("p_mug", "MUG-BLUE", "Blue ceramic mug"),
    ("p_tee", "TEE-ORG", "Organic cotton tee"),
    ("p_bag", "BAG-CNV", "Canvas tote bag"),
    ("p_cand", "CAN-LAV", "Lavender candle"),
    ("p_note", "NOTE-A5", "A5 dotted notebook"),
]
NAMES = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances"]


def _email(i, name):
    # The outbox provider simulates failures for these domains (see README).
    domain = {7: "fail.test", 11: "flaky.test", 13: "down.test"}.get(i % 17, "example.com")
    return f"{name.lower()}.{i}@{domain}"


DEMO_ADMIN = "demo@shop.example"


def seed_demo_admin(now, instance_path):
    """A demo login with a random password, written to instance/demo-login.txt.

    Only ``flask seed-demo`` (``make run``) calls this; production creates its admins with
    ``flask admins create`` and never has a default password.
    """
    path = os.path.join(instance_path, "demo-login.txt")
    if db.session.scalar(select(Admin.id).where(Admin.email == DEMO_ADMIN)):
        return path
    password = secrets.token_urlsafe(9)
    create_admin(DEMO_ADMIN, password, now)
    db.session.commit()
    with open(path, "w") as f:
        f.write(f"Dashboard login (demo): {DEMO_ADMIN} / {password}\n")
    return path


def seed_demo(now, orders=60, days=30):
    if db.session.scalar(select(func.count(Campaign.id))):
        return "demo data already present; nothing seeded"
    rng = random.Random(42)
    start = now - timedelta(days=days)
    create_campaign(start, name="Video review after delivery", delay_days=2, channel="both",
                    reminder_delay_days=3, max_reminders=2, expire_after_days=14)
    create_campaign(start, name="Holiday gift sets (draft)", status="draft", include_products=["GIFT-SET"])
    db.session.commit()
    for i in range(orders):
        when = start + timedelta(hours=i * days * 24 / orders + rng.randint(0, 5))
        name = NAMES[i % len(NAMES)]
        items = rng.sample(PRODUCTS, k=rng.choice([1, 1, 2]))
        phone = f"+1555{1000000 + i:07d}" if i % 3 else None
        body = {
            "event_id": f"demo-evt-{i}",
            "event_type": "order.delivered",
            "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "order": {
                "id": 5000 + i, "total": f"{rng.randint(12, 120)}.00", "currency": "USD",
                "customer": {"email": _email(i, name), "phone": phone, "first_name": name},
                "items": [{"id": f"li_{i}_{n}", "product_id": p, "sku": sku, "title": t, "quantity": 1,
                           "delivered": True} for n, (p, sku, t) in enumerate(items)],
            },
        }
        ingest_with_retry(parse_order_event(body), body, when)
    if orders:
        # A cancelled order, so the log shows that outcome too.
        cancel = {"event_id": "demo-evt-cancel", "event_type": "order.cancelled",
                  "occurred_at": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "order": {"id": 5000 + orders - 1}}
        ingest_with_retry(parse_order_event(cancel), cancel, now - timedelta(days=1))
    tick = start
    while tick <= now:
        dispatch_due(tick, limit=1000)
        _customers_respond(tick, rng)
        tick += timedelta(hours=6)
    return f"demo data seeded: {orders} orders over {days} days"


def _customers_respond(tick, rng):
    sent = db.session.scalars(
        select(TestimonialRequest).where(TestimonialRequest.status.in_(("sent", "clicked")))
    ).all()
    for req in sent:
        roll = rng.random()
        if req.status == "sent" and roll < 0.025:
            record_click(req, tick + timedelta(minutes=rng.randint(5, 300)))
        elif req.status == "clicked" and roll < 0.06:
            record_submission(req, tick + timedelta(minutes=rng.randint(5, 300)))
    db.session.commit()
