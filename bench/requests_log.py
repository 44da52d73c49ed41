"""Benchmark: the Requests Log and the home page over 200,000 requests on SQLite.

    .venv/bin/python bench/requests_log.py            # seeds /tmp/bench_requests_log.db once
    .venv/bin/python bench/requests_log.py --reseed   # start from a fresh file
    .venv/bin/python bench/requests_log.py --rows 50000 --runs 30 --db /tmp/other.db

Seeds a freshly migrated SQLite file (``flask db upgrade``, the real schema and indexes)
through SQLAlchemy Core bulk inserts: 200,000 requests across 3 campaigns and 30 days in
every status, with their slot_sends and events (~2.5 per request), then prints the median
server time (the Flask test client, ``time.perf_counter``, after warm-up) of the Requests
Log's first page, a filtered page (status=failed, campaign 1, search by e-mail) and "/".
Target: under 150 ms each on a 2-core machine. Figures, never assertions.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ADMIN = ("bench@shop.example", "bench password 123")
STATUS_WEIGHTS = {  # a month of a shop that has run for a while
    "scheduled": 8,
    "queued": 0.2,
    "sent": 42,
    "clicked": 18,
    "submitted": 12,
    "failed": 5,
    "expired": 11,
    "cancelled": 3.8,
}
TITLES = [
    "Blue ceramic mug",
    "Cotton tee",
    "Linen apron",
    "Oak cutting board",
    "Wool scarf",
    "Espresso cups",
    "Leather wallet",
    "Canvas tote",
    "Bamboo toothbrush",
    "Cast iron pan",
    "Glass teapot",
    "Desk lamp",
]
FAIL_REASONS = [
    ("email", "outbox-rejected", "permanent [outbox-rejected]: recipient {to} rejected (simulated permanent failure)"),
    ("email", "550", "permanent [550]: mailbox unavailable"),
    ("sms", "21610", "permanent [21610]: the number has unsubscribed (STOP)"),
    ("sms", "30003", "gave up after 3 attempts: unreachable destination handset"),
]


def build_app(db_file):
    from app import create_app
    from config import TestConfig

    attrs = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
        "WTF_CSRF_ENABLED": False,  # the bench logs in with a plain post
        "CLOCK": lambda: NOW,
        "UPLOAD_DIR": "/tmp/bench_uploads",
    }
    return create_app(type("BenchConfig", (TestConfig,), attrs))


def seed(app, rows, rng):
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app.auth.services import create_admin
    from app.campaign_admin.services import create_campaign
    from app.extensions import db
    from app.lifecycle.models import SlotSend, TestimonialRequest, TestimonialRequestEvent

    with app.app_context():
        upgrade()
        create_admin(*ADMIN, NOW)
        campaigns = [
            create_campaign(NOW - timedelta(days=60), name="Video reviews", delay_days=3),
            create_campaign(NOW - timedelta(days=60), name="SMS follow-up", delay_days=2, channel="sms"),
            create_campaign(NOW - timedelta(days=60), name="VIP both channels", delay_days=1, channel="both"),
        ]
        db.session.commit()
        channel_of = {c.id: c.channel for c in campaigns}
        statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
        span = 30 * 24 * 3600
        # Creation times in order so ids grow with created_at, as they do in production.
        offsets = sorted(rng.uniform(0, span) for _ in range(rows))
        chunk, next_id = 10_000, 1
        conn = db.session.connection()
        for start in range(0, rows, chunk):
            reqs, sends, events = [], [], []
            for offset in offsets[start : start + chunk]:
                rid = next_id
                next_id += 1
                created = NOW - timedelta(seconds=span - offset)
                cid = rng.choices([c.id for c in campaigns], weights=[6, 2, 2])[0]
                channel = channel_of[cid]
                status = rng.choices(statuses, weights=weights)[0]
                r = request_row(rid, cid, channel, status, created, rng)
                reqs.append(r)
                add_history(r, sends, events, rng)
            conn.execute(insert(TestimonialRequest), reqs)
            if sends:
                conn.execute(insert(SlotSend), sends)
            conn.execute(insert(TestimonialRequestEvent), events)
        db.session.commit()
        conn = db.session.connection()
        conn.exec_driver_sql("ANALYZE")
        db.session.commit()


def request_row(rid, cid, channel, status, created, rng):
    n = rng.randrange(1, 60_000)
    title = rng.choice(TITLES)
    product = f"p_{TITLES.index(title) + 1}"
    email = f"customer{n}@{'fail.test' if status == 'failed' and rng.random() < 0.5 else 'example.com'}"
    sent = status not in ("scheduled", "queued") and not (status in ("failed", "cancelled") and rng.random() < 0.6)
    sent_at = created + timedelta(days=rng.choice([1, 2, 3]), minutes=rng.randrange(0, 5)) if sent else None
    if sent_at and sent_at > NOW:
        sent_at = NOW - timedelta(minutes=rng.randrange(1, 600))
    clicked = status in ("clicked", "submitted") and sent_at
    r = {
        "id": rid,
        "campaign_id": cid,
        "order_id": str(100_000 + rid),
        "item_id": f"li_{rid}",
        "product_id": product,
        "sku": f"SKU-{product.upper()}",
        "product_title": title,
        "customer_email": email if channel in ("email", "both") else None,
        "customer_phone": f"+1555{n:07d}" if channel in ("sms", "both") else None,
        "customer_first_name": "Customer",
        "customer_last_name": str(n),
        "channel": channel,
        "token": f"tok{rid:012d}",
        "status": status,
        "trigger_at": created,
        "next_send_at": None,
        "next_slot": 0,
        "reminder_count": 0,
        "attempts": 0,
        "resend_count": 0,
        "sent_at": sent_at,
        "last_sent_at": sent_at,
        "clicked_at": None,
        "submitted_at": None,
        "expires_at": sent_at + timedelta(days=30) if sent_at else None,
        "cancelled_at": None,
        "last_error": None,
        "last_event_at": sent_at or created,
        "created_at": created,
        "updated_at": created,
        "claimed_at": None,
        "claim_id": None,
        "order_event_id": None,
        "product_image_url": None,
        "email_message_id": None,
        "sms_message_id": None,
    }
    if status == "scheduled":
        r["next_send_at"] = created + timedelta(days=3)
    elif status in ("sent", "clicked") and sent_at:
        r["reminder_count"] = rng.choice([0, 0, 1, 2])
        r["next_slot"] = r["reminder_count"] + 1
        r["next_send_at"] = sent_at + timedelta(days=4 * r["next_slot"]) if r["reminder_count"] < 2 else None
    if clicked:
        r["clicked_at"] = sent_at + timedelta(hours=rng.randrange(1, 72))
    if status == "submitted" and sent_at:
        r["submitted_at"] = (r["clicked_at"] or sent_at) + timedelta(minutes=rng.randrange(2, 600))
    if status == "cancelled":
        r["cancelled_at"] = (sent_at or created) + timedelta(hours=5)
    if status == "failed":
        channel_failed, code, text = rng.choice(
            [f for f in FAIL_REASONS if f[0] in (channel, "email" if channel != "sms" else "sms")]
        )
        r["last_error"] = f"{channel_failed}: " + text.format(to=email)
        r["_fail"] = (channel_failed, code, r["last_error"])
    return r


def add_history(r, sends, events, rng):
    fail = r.pop("_fail", None)
    rid, created = r["id"], r["created_at"]
    channels = ("email", "sms") if r["channel"] == "both" else (r["channel"],)
    due = r["sent_at"] or created + timedelta(days=1)
    if r["status"] in ("scheduled",):
        return
    events.append(event(rid, "queued", due, slot=0))
    if r["sent_at"]:
        for channel in channels:
            mid = f"outbox-{rid:08d}{channel[0]}"
            sends.append(slot_send(rid, 0, channel, "sent", r["sent_at"], mid))
            events.append(
                event(rid, "sent", r["sent_at"], channel=channel, slot=0, provider="outbox", provider_message_id=mid)
            )
        r[f"{channels[0]}_message_id"] = f"outbox-{rid:08d}{channels[0][0]}"
        for k in range(1, r["reminder_count"] + 1):
            at = r["sent_at"] + timedelta(days=4 * k)
            if at < NOW:
                sends.append(slot_send(rid, k, channels[0], "sent", at, f"outbox-{rid:08d}r{k}"))
                events.append(event(rid, "sent", at, channel=channels[0], slot=k, provider="outbox"))
    if r["clicked_at"]:
        events.append(event(rid, "clicked", r["clicked_at"], detail="customer opened the link"))
    if fail:
        channel, code, text = fail
        at = (r["sent_at"] or due) + timedelta(minutes=1)
        slot = r["reminder_count"] + 1 if r["sent_at"] else 0
        sends.append(slot_send(rid, slot, channel, "failed", at, None, error=text))
        events.append(
            event(rid, "failed", at, channel=channel, slot=slot, provider="outbox", error_code=code, detail=text)
        )
    if r["status"] in ("submitted", "expired", "cancelled"):
        at = r["submitted_at"] or r["cancelled_at"] or (r["expires_at"] or due)
        events.append(event(rid, r["status"], min(at, NOW)))


def event(rid, type_, at, **fields):
    base = {
        "request_id": rid,
        "type": type_,
        "occurred_at": at,
        "created_at": at,
        "channel": None,
        "slot": None,
        "provider": None,
        "provider_message_id": None,
        "error_code": None,
        "detail": None,
        "dedupe_key": None,
    }
    return {**base, **fields}


def slot_send(rid, slot, channel, status, at, mid, error=None):
    return {
        "request_id": rid,
        "slot": slot,
        "channel": channel,
        "resend": 0,
        "status": status,
        "provider": "outbox",
        "provider_message_id": mid,
        "attempts": 1,
        "error": error,
        "retryable": status != "failed",
        "started_at": at,
        "finished_at": at,
        "due_at": at - timedelta(seconds=30),
    }


def time_get(client, url, runs, warmup=3):
    for _ in range(warmup):
        response = client.get(url)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        response.get_data()
        timings.append((time.perf_counter() - start) * 1000)
    return response.status_code, timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/bench_requests_log.db")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import logging

    logging.getLogger("app").setLevel(logging.WARNING)
    if args.reseed:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(args.db + suffix):
                os.remove(args.db + suffix)
    app = build_app(args.db)
    logging.getLogger("app").setLevel(logging.WARNING)
    from sqlalchemy import func, select

    from app.extensions import db
    from app.lifecycle.models import TestimonialRequest

    with app.app_context():
        existing = 0
        if os.path.exists(args.db) and os.path.getsize(args.db) > 0:
            try:
                existing = db.session.scalar(select(func.count(TestimonialRequest.id)))
            except Exception:  # an empty or foreign file: start over
                existing = -1
            db.session.remove()
    if existing == args.rows:
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()  # a file seeded by an older revision gets the newer schema (and its backfills)
    if existing != args.rows:
        if existing:
            print(f"{args.db} holds {existing} requests, not {args.rows}: reseeding", file=sys.stderr)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(args.db + suffix):
                    os.remove(args.db + suffix)
            app = build_app(args.db)
        started = time.perf_counter()
        seed(app, args.rows, random.Random(args.seed))
        print(f"seeded {args.rows:,} requests into {args.db} in {time.perf_counter() - started:.1f} s")

    with app.app_context():
        email = db.session.scalar(
            select(TestimonialRequest.customer_email)
            .where(
                TestimonialRequest.status == "failed",
                TestimonialRequest.campaign_id == 1,
                TestimonialRequest.customer_email.is_not(None),
            )
            .order_by(TestimonialRequest.id.desc())
        )
        counts = dict(
            db.session.execute(
                select(TestimonialRequest.status, func.count()).group_by(TestimonialRequest.status)
            ).all()
        )
        db.session.remove()

    client = app.test_client()
    login = client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    if login.status_code != 302:
        sys.exit(f"could not log in (HTTP {login.status_code})")
    print("requests by status:", ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    cases = [
        ("Requests Log, first page", "/requests/"),
        ("Requests Log, page 40", "/requests/?page=40"),
        (f"Requests Log, status=failed & campaign 1 & q={email}", f"/requests/?status=failed&campaign_id=1&q={email}"),
        ("Requests Log, status=failed & campaign 1", "/requests/?status=failed&campaign_id=1"),
        ("Requests Log, search by product title 'mug'", "/requests/?q=mug"),
        ("Requests Log, search by a phone not in the log", "/requests/?q=%2B19999999999"),
        ("Requests Log, national phone (trailing digits: reads the table)", "/requests/?q=555+003+4145"),
        ("Requests Log, title word in no title (reads the whole table)", "/requests/?q=zebra"),
        ("Requests Log, page 2000 (OFFSET 99,950)", "/requests/?page=2000"),
        (
            "Requests Log, created in one week & has error",
            "/requests/?created_from=2026-11-01&created_to=2026-11-07&has_error=y",
        ),
        (
            "Requests Log, failed created in one day (~340: bulk Retry checks each)",
            "/requests/?status=failed&created_from=2026-11-10&created_to=2026-11-10",
        ),
        ("Request detail", "/requests/150000"),
        ('Home "/" (last 30 days, all campaigns; no cache: every load computes)', "/"),
        ('Home "/?period=90&campaign=1"', "/?period=90&campaign=1"),
    ]
    print(
        f"median server time over {args.runs} runs after warm-up (Flask test client, SQLite, "
        f"{os.cpu_count()} CPUs); target < 150 ms"
    )
    for label, url in cases:
        try:
            status, timings = time_get(client, url, args.runs)
        except Exception as exc:  # e.g. a screen still being built: report, carry on
            print(f"  {label:<70} error: {exc!r}")
            continue
        note = "" if status == 200 else f"  (HTTP {status})"
        print(
            f"  {label:<70} median {statistics.median(timings):7.1f} ms   "
            f"p90 {statistics.quantiles(timings, n=10)[-1]:7.1f} ms{note}"
        )
    # The export streams every matching row: one run, for scale (not a page view).
    start = time.perf_counter()
    response = client.get("/requests/export.csv")
    size = len(response.get_data())
    print(
        f"  {'CSV export of all rows (one run, streamed)':<70} {time.perf_counter() - start:8.2f} s    "
        f"{size / 1e6:.1f} MB (HTTP {response.status_code})"
    )


if __name__ == "__main__":
    main()
