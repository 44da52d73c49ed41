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


SAMPLE_TEXTS = [
    "Love it — the colour is even nicer in person.",
    "Arrived quickly and well packed. Would buy again!",
    "Great quality for the price; I use it every day.",
    "Exactly as described. My partner stole it already.",
]


def _phone(i):
    # Every 23rd customer has a number the outbox refuses for good (a "9999" SMS failure).
    return f"+1555{1000000 + i:07d}" if i % 23 else "+15550009999"


def _order(i, rng, *, products=PRODUCTS, prefix="demo"):
    name = NAMES[i % len(NAMES)]
    items = rng.sample(products, k=min(len(products), rng.choice([1, 1, 1, 2])))
    return {
        "event_id": f"{prefix}-evt-{i}",
        "event_type": "order.delivered",
        "occurred_at": None,  # set when the order arrives
        "order": {
            "id": f"{5000 + i}" if prefix == "demo" else f"{prefix}-{i}", "total": f"{rng.randint(12, 120)}.00",
            "currency": "USD",
            "customer": {"email": _email(i, name), "phone": _phone(i) if i % 3 else None, "first_name": name},
            "items": [{"id": f"li_{i}_{n}", "product_id": p, "sku": sku, "title": t, "quantity": 1,
                       "delivered": True} for n, (p, sku, t) in enumerate(items)],
        },
    }


def seed_demo(now, orders=240, days=30):
    """A few hundred requests over ``days``: every status, failures with reasons, text
    testimonials, opt-outs, a paused campaign and a draft. A no-op once campaigns exist."""
    from app.campaigns.services import set_status
    from app.public.services import opt_out

    if db.session.scalar(select(func.count(Campaign.id))):
        return "demo data already present; nothing seeded"
    rng = random.Random(42)
    start = now - timedelta(days=days)
    create_campaign(start, name="Video review after delivery", delay_days=2, channel="both",
                    reminder_delay_days=3, max_reminders=2, expire_after_days=14, email_send_window=None,
                    sms_send_window=None, exclude_products=["GIFT-SET"])
    gifts = create_campaign(start, name="Gift sets: a short video", delay_days=1, channel="email",
                            include_products=["GIFT-SET"], reminder_delay_days=2, max_reminders=1)
    create_campaign(start, name="Holiday gift sets (draft)", status="draft", include_products=["GIFT-SET-XL"])
    db.session.commit()
    bodies = [(start + timedelta(hours=i * days * 24 / orders + rng.randint(0, 5)), _order(i, rng))
              for i in range(orders)]
    gift = [("p_gift", "GIFT-SET", "Gift set: mug and candle")]
    bodies += [(now - timedelta(days=d, hours=3), _order(900 + d, rng, products=gift, prefix="gift"))
               for d in (6, 4, 2, 1)]
    bodies.sort(key=lambda pair: pair[0])
    tick, pending = start, list(bodies)
    paused = False
    while tick <= now:
        while pending and pending[0][0] <= tick:
            when, body = pending.pop(0)
            body["occurred_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            ingest_with_retry(parse_order_event(body), body, when)
        if not paused and tick >= now - timedelta(days=2):
            set_status(gifts, "pause", tick)  # its due sends are held: a paused campaign's screen
            db.session.commit()
            paused = True
        dispatch_due(tick, limit=1000)
        _customers_respond(tick, rng)
        tick += timedelta(hours=6)
    if orders:
        # A cancelled order, and customers who opted out, so those screens show something.
        cancel = {"event_id": "demo-evt-cancel", "event_type": "order.cancelled",
                  "occurred_at": (now - timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "order": {"id": f"{5000 + orders - 1}"}}
        ingest_with_retry(parse_order_event(cancel), cancel, now - timedelta(hours=20))
        for i in range(orders - 8, orders - 2, 2):
            opt_out("email", _email(i, NAMES[i % len(NAMES)]), now - timedelta(hours=10), source="link",
                    detail="demo: unsubscribed from the email link")
        opt_out("sms", _phone(orders - 3), now - timedelta(hours=9), source="sms_stop", detail="demo: replied STOP")
        db.session.commit()
    return f"demo data seeded: {orders + 4} orders over {days} days"


def _customers_respond(tick, rng):
    from app.public.services import submit_testimonial

    sent = db.session.scalars(
        select(TestimonialRequest).where(TestimonialRequest.status.in_(("sent", "clicked")))
    ).all()
    for req in sent:
        roll = rng.random()
        if req.status == "sent" and roll < 0.035:
            record_click(req, tick + timedelta(minutes=rng.randint(5, 300)))
        elif req.status == "clicked" and roll < 0.10:
            when = tick + timedelta(minutes=rng.randint(5, 300))
            if rng.random() < 0.5:
                submit_testimonial(req, text=rng.choice(SAMPLE_TEXTS), consent=True, video=None, now=when)
            else:
                record_submission(req, when)
    db.session.commit()
