"""Demo data for ``make run``: a campaign and a few weeks of realistic history.

History is made by the real code paths (intake, dispatch ticks at past times, clicks and
submissions), so every row the demo shows is one the product could have produced.
"""

import hashlib
import os
import random
import re
import secrets
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.auth.models import Admin
from app.auth.services import create_admin
from app.campaign_admin.services import create_campaign, set_status
from app.campaigns.models import ACTIVE, DRAFT, Campaign
from app.clock import as_utc
from app.demo.videos import store_demo_video
from app.extensions import db
from app.intake.schema import parse_order_event
from app.intake.services import ingest
from app.lifecycle.dispatch import TickReport, dispatch_due
from app.lifecycle.heartbeat import record_ticks
from app.lifecycle.models import TestimonialRequest
from app.lifecycle.services import record_click
from app.lifecycle.states import CLICKED, SENDABLE, SENT
from app.optouts.services import suppress as opt_out
from app.public.services import submit_testimonial
from app.storage import get_storage
from app.testimonials.models import Testimonial
from app.testimonials.moderation import APPROVED, move
from app.transactions import commit_with_retry

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


def demo_login_path(database_url, instance_path):
    """Where this database's demo login is kept: next to a SQLite file (``instance/testimonials.db``
    → ``instance/testimonials.demo-login.txt``), else in the instance folder under a name
    derived from the URL. One file per database, so seeding another database never
    overwrites the login that works for this one."""
    url = make_url(str(database_url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = url.database if os.path.isabs(url.database) else os.path.join(instance_path, url.database)
        return os.path.splitext(path)[0] + ".demo-login.txt"
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:8]
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", url.database or url.get_backend_name()).strip("-") or "db"
    return os.path.join(instance_path, f"demo-login-{name}-{digest}.txt")


def _saved_password(path):
    try:
        with open(path) as f:
            return f.read().strip().rsplit(" / ", 1)[-1]
    except (OSError, UnicodeDecodeError):
        return None


def seed_demo_admin(now, path):
    """The demo login (``DEMO_ADMIN`` with a random password), written to ``path``.

    Re-run on a database that already has the demo admin, it keeps the password when the
    file still holds the one that works, and otherwise gives the demo admin a new one: the
    printed login always works for this database. Only the demo admin is ever touched
    (``shop.example`` is a reserved domain no real merchant has). Only ``flask seed-demo``
    (``make run``) calls this; production creates its admins with ``flask admins create``.
    """
    admin = db.session.scalar(select(Admin).where(Admin.email == DEMO_ADMIN))
    saved = _saved_password(path)
    if admin is not None and saved and admin.check_password(saved):
        return path
    password = secrets.token_urlsafe(9)
    if admin is None:
        create_admin(DEMO_ADMIN, password, now)
    else:
        admin.set_password(password)
    db.session.commit()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
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
            "id": f"{5000 + i}" if prefix == "demo" else f"{prefix}-{i}",
            "total": f"{rng.randint(12, 120)}.00",
            "currency": "USD",
            "customer": {"email": _email(i, name), "phone": _phone(i) if i % 3 else None, "first_name": name},
            "items": [
                {"id": f"li_{i}_{n}", "product_id": p, "sku": sku, "title": t, "quantity": 1, "delivered": True}
                for n, (p, sku, t) in enumerate(items)
            ],
        },
    }


# The demo's scheduler: every 6 hours for most of the history (fast to seed), then at the
# real scheduler interval for the last LIVE_HOURS, so the SLO panel's last hour and last
# day show what a running app shows: messages sent within a minute of their due time.
COARSE_STEP = timedelta(hours=6)
LIVE_HOURS = 25


def seed_demo(now, orders=240, days=30, progress=None):
    """A few hundred requests over ``days``: every status, failures with reasons, text
    testimonials, opt-outs, a paused campaign and a draft. A no-op once campaigns exist.

    Everything happens in time order on a simulated clock (``app.clock.now()`` returns the
    simulated time meanwhile), so stored times, outbox messages and timelines agree.
    ``progress(text)``, when given, hears how far the seed is (every tenth of the way)."""
    if db.session.scalar(select(func.count(Campaign.id))):
        return "demo data already present; nothing seeded"
    rng = random.Random(42)
    start = now - timedelta(days=days)
    with simulated_clock(start) as clock:
        create_campaign(
            start,
            name="Video review after delivery",
            delay_days=2,
            channel="both",
            reminder_delay_days=3,
            max_reminders=2,
            expire_after_days=14,
            email_send_window=None,
            sms_send_window=None,
            exclude_products=["GIFT-SET"],
        )
        gifts = create_campaign(
            start,
            name="Gift sets: a short video",
            delay_days=1,
            channel="email",
            include_products=["GIFT-SET"],
            reminder_delay_days=2,
            max_reminders=1,
        )
        create_campaign(start, name="Holiday gift sets (draft)", status=DRAFT, include_products=["GIFT-SET-XL"])
        db.session.commit()

        def order(body):
            def deliver(when):
                body["occurred_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                event = parse_order_event(body)
                commit_with_retry(lambda attempt: ingest(event, body, when, attempt=attempt))

            return deliver

        def pause_gifts(when):
            set_status(gifts, "pause", when)  # its due sends are held: a paused campaign's screen
            db.session.commit()

        actions = [
            (
                start + timedelta(hours=i * days * 24 / orders + rng.randint(0, 5), seconds=rng.randint(0, 3599)),
                order(_order(i, rng)),
            )
            for i in range(orders)
        ]
        gift = [("p_gift", "GIFT-SET", "Gift set: mug and candle")]
        actions += [
            (now - timedelta(days=d, hours=3), order(_order(900 + d, rng, products=gift, prefix="gift")))
            for d in (6, 4, 2, 1)
        ]
        actions.append((now - timedelta(days=2), pause_gifts))
        if orders >= 12:
            actions += _cancellations_and_opt_outs(now, orders, opt_out)
        actions.sort(key=lambda pair: pair[0])

        ticks, respond_at = _schedule(start, now)
        shown, work_at, heartbeats = 0, None, []
        span = (now - start).total_seconds()
        for n, tick in enumerate(ticks):
            # by simulated time, not by tick: the last hours have most of the ticks (one a
            # minute) and little of the work, the orders are spread over the whole month
            if progress and (done := min(9, int((tick - start).total_seconds() * 10 // span))) > shown:
                shown = done
                progress(f"  {done * 10:3d}%  the shop's history up to {tick:%Y-%m-%d}")
            clock.at(tick)
            while actions and actions[0][0] <= tick:
                when, action = actions.pop(0)
                clock.at(when)
                action(when)
                work_at = None
            clock.at(tick)
            work_at = work_at or _next_work_at()
            if work_at <= tick:
                report, work_at = dispatch_due(tick, limit=1000), None
            else:
                report = TickReport()  # what a tick with nothing due reports
            if tick >= now - timedelta(hours=LIVE_HOURS):  # the live hours
                heartbeats.append((tick, report))  # the heartbeat the SLO panel reads
            if tick in respond_at:
                following = next((t for t in ticks[n + 1 :] if t in respond_at), now)
                _customers_respond(tick, rng, following - tick)
                work_at = None
        record_ticks(heartbeats)
        videos = _video_testimonials(now, rng)
        if progress:
            progress(f"  videos: {videos} short test-pattern clips, some approved, some waiting for you")
    return f"demo data seeded: {orders + 4} orders over {days} days"


NOTHING_PENDING = datetime.max.replace(tzinfo=UTC)


def _next_work_at():
    """When the next dispatch tick has something to do: the earliest slot due in an active
    campaign or the earliest expiry, as ``dispatch_due`` and ``expire_due`` select them
    (NOTHING_PENDING: neither). The live hours are ~1,500 scheduler ticks, most of them
    with nothing due; the seed runs only the ones that act and writes every heartbeat."""
    due = (
        select(func.min(TestimonialRequest.next_send_at))
        .join(Campaign, Campaign.id == TestimonialRequest.campaign_id)
        .where(
            TestimonialRequest.status.in_(SENDABLE),
            TestimonialRequest.claimed_at.is_(None),
            Campaign.status == ACTIVE,
        )
        .scalar_subquery()
    )
    expiry = (
        select(func.min(TestimonialRequest.expires_at))
        .where(TestimonialRequest.status.in_((SENT, CLICKED)), TestimonialRequest.claimed_at.is_(None))
        .scalar_subquery()
    )
    times = [as_utc(at) for at in db.session.execute(select(due, expiry)).one() if at is not None]
    db.session.commit()  # ends the read: the dispatch and the customers' steps commit their own
    return min(times, default=NOTHING_PENDING)


DEMO_VIDEOS = [  # (seconds, tone in Hz, accent colour, rating, approved?)
    (3.0, 440.0, (59, 91, 219), 5, True),
    (4.0, 523.3, (224, 49, 49), 5, True),
    (3.0, 659.3, (47, 158, 68), 4, False),
    (3.5, 392.0, (240, 140, 0), 3, False),
]


def _video_testimonials(now, rng):
    """Ratings on every testimonial, and a video on the latest few (made now with PyAV,
    saved through the video storage): the Testimonials screen shows the product at work."""
    testimonials = db.session.scalars(select(Testimonial).order_by(Testimonial.created_at.desc())).all()
    for testimonial in testimonials:
        testimonial.rating = rng.choice((5, 5, 5, 4, 4, 3))
    storage = get_storage()
    approved = []
    chosen = zip(testimonials, DEMO_VIDEOS, strict=False)  # a small demo may have fewer testimonials
    for n, (testimonial, (seconds, tone, accent, rating, approve)) in enumerate(chosen):
        for name, value in store_demo_video(
            storage, f"{testimonial.id}-{n}", seconds=seconds, frequency=tone, accent=accent
        ).items():
            setattr(testimonial, name, value)
        testimonial.video_processed_at = testimonial.created_at
        testimonial.rating = rating
        if approve:
            approved.append(testimonial.id)
    db.session.flush()
    move(approved, APPROVED, now)
    db.session.commit()
    return min(len(testimonials), len(DEMO_VIDEOS))


def _schedule(start, now):
    """The dispatch tick times, and the ticks after which customers respond."""
    interval = timedelta(seconds=int(current_app.config.get("SCHEDULER_INTERVAL_SECONDS") or 60))
    # A real scheduler's ticks fall anywhere between due times: offset them from the history's.
    live_from = now - timedelta(hours=LIVE_HOURS) + interval * 0.4
    ticks, tick = [], start
    while tick < live_from:
        ticks.append(tick)
        tick += COARSE_STEP
    respond_at = set(ticks)
    tick = live_from
    while tick <= now:
        ticks.append(tick)
        tick += interval
    respond_at.update(live_from + timedelta(hours=h) for h in range(LIVE_HOURS))
    return ticks, respond_at & set(ticks)


def _cancellations_and_opt_outs(now, orders, opt_out):
    """A cancelled order (delivered about a day and a half ago, its request still waiting)
    and customers who opted out, so those screens show something."""

    def cancel(when):
        body = {
            "event_id": "demo-evt-cancel",
            "event_type": "order.cancelled",
            "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "order": {"id": f"{5000 + orders - 12}"},
        }
        event = parse_order_event(body)
        commit_with_retry(lambda attempt: ingest(event, body, when, attempt=attempt))

    def unsubscribe(i):
        def act(when):
            opt_out(
                "email",
                _email(i, NAMES[i % len(NAMES)]),
                when,
                source="link",
                detail="demo: unsubscribed from the email link",
            )
            db.session.commit()

        return act

    def stop(when):
        opt_out("sms", _phone(orders - 3), when, source="sms_stop", detail="demo: replied STOP")
        db.session.commit()

    return (
        [(now - timedelta(hours=20), cancel)]
        + [(now - timedelta(hours=10), unsubscribe(i)) for i in range(orders - 8, orders - 2, 2)]
        + [(now - timedelta(hours=9), stop)]
    )


class _SimulatedClock:
    def __init__(self, start):
        self.current = start

    def __call__(self):
        return self.current

    def at(self, when):
        self.current = when


@contextmanager
def simulated_clock(start):
    """``app.clock.now()`` returns the simulated time while the demo is seeded."""
    config = current_app.config
    previous = config.get("CLOCK")
    clock = _SimulatedClock(start)
    config["CLOCK"] = clock
    try:
        yield clock
    finally:
        config["CLOCK"] = previous


def _customers_respond(tick, rng, within):
    """Some customers open their link or submit within ``within`` after ``tick`` (before
    the next call, so the history stays in time order)."""
    latest = max(5, int(within.total_seconds() // 60) - 5)
    scale = min(1.0, within / COARSE_STEP)  # hourly calls in the live hours: the same rate per day
    has_text = db.session.scalar(select(func.count(Testimonial.id)).where(Testimonial.text.is_not(None))) > 0

    # Ids and statuses only: the few customers who act are loaded one by one (loading every
    # open request at each of ~140 calls was a fifth of the seed).
    sent = db.session.execute(
        select(TestimonialRequest.id, TestimonialRequest.status)
        .where(TestimonialRequest.status.in_((SENT, CLICKED)))
        .order_by(TestimonialRequest.id)
    ).all()
    for request_id, status in sent:
        roll = rng.random()
        if status == SENT and roll < 0.035 * scale:
            record_click(
                db.session.get(TestimonialRequest, request_id),
                tick + timedelta(minutes=rng.randint(5, min(300, latest))),
            )
        elif status == CLICKED and (roll < 0.10 * scale or not has_text):
            when = tick + timedelta(minutes=rng.randint(5, min(300, latest)))
            # Through the customer's own path: every submitted request has its testimonial
            # (the demo has no video files, so each is a written one).
            has_text = True
            submit_testimonial(
                db.session.get(TestimonialRequest, request_id),
                text=rng.choice(SAMPLE_TEXTS),
                consent=True,
                video=None,
                now=when,
            )
    db.session.commit()
