"""Benchmark: draining a backlog of due first messages through SendGrid (a local fake).

    .venv/bin/python bench/dispatch.py                       # 10,000 slots, 200 ms per call
    .venv/bin/python bench/dispatch.py --slots 2000 --latency 50
    .venv/bin/python bench/dispatch.py --database postgresql # the test PostgreSQL (127.0.0.1:54329)

Seeds a freshly migrated database (``flask db upgrade``) with N requests whose first
message is due now (one e-mail campaign, Core bulk inserts), points the real SendGrid
provider (the official SDK) at a fake ``mail/send`` on 127.0.0.1 in its own process that
answers after the chosen latency, and runs dispatch ticks (``dispatch_due``, what the
scheduler runs) until nothing is due. Then the same with a fake that answers at once.

Prints: the drain time and its ratio to the limit N × latency / SEND_CONCURRENCY (goal
≤ 1.15), slots/s with the provider answering at once (goal ≥ 500), the messages the fake
received twice (must be 0), and the process's peak RSS (goal < 250 MB). Figures, never
assertions. The app's per-slot INFO log lines are silenced (WARNING and up still print).
"""

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import fake_sendgrid  # noqa: E402

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # Black Friday, 09:00 UTC
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:54329/postgres"


def build_app(database_url, api_url, **settings):
    from app import create_app
    from config import TestConfig

    attrs = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "CLOCK": lambda: NOW,
        "UPLOAD_DIR": os.path.join(tempfile.gettempdir(), "bench_uploads"),
        "EMAIL_PROVIDER": "sendgrid",
        "SENDGRID_API_KEY": "SG.bench-key",
        "SENDGRID_API_HOST": api_url,
        "EMAIL_FROM": "Bench Shop <shop@bench.example>",
        "PUBLIC_BASE_URL": "https://shop.bench.example",
        **settings,
    }
    return create_app(type("BenchConfig", (TestConfig,), attrs))


def new_database(kind):
    """A fresh database URL: a temp SQLite file, or a new database on the test PostgreSQL."""
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench_dispatch_')}/bench.db", None
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"bench_dispatch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), drop


def seed(app, slots):
    """N scheduled requests whose first message is due, oldest first over the last hour."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app.campaign_admin.services import create_campaign
    from app.extensions import db
    from app.lifecycle.models import TestimonialRequest

    with app.app_context():
        upgrade()
        campaign = create_campaign(NOW - timedelta(days=30), name="Black Friday", delay_days=0)
        db.session.commit()
        rows = [
            {
                "id": n,
                "campaign_id": campaign.id,
                "order_id": str(500_000 + n),
                "item_id": f"li_{n}",
                "product_id": "p_1",
                "product_title": "Blue ceramic mug",
                "customer_email": f"customer{n}@example.com",
                "customer_first_name": "Ada",
                "channel": "email",
                "token": f"tok{n:012d}",
                "status": "scheduled",
                "trigger_at": NOW - timedelta(days=1),
                "next_send_at": NOW - timedelta(seconds=3600 * (slots - n) / slots),
                "next_slot": 0,
                "reminder_count": 0,
                "attempts": 0,
                "resend_count": 0,
                "created_at": NOW - timedelta(days=1),
                "updated_at": NOW - timedelta(days=1),
            }
            for n in range(1, slots + 1)
        ]
        for start in range(0, slots, 5000):
            db.session.execute(insert(TestimonialRequest), rows[start : start + 5000])
        db.session.commit()


def drain(app):
    """Ticks until nothing is due; returns (seconds, sent, ticks)."""
    from app.lifecycle.dispatch import dispatch_due

    started, sent, ticks = time.perf_counter(), 0, 0
    with app.app_context():
        while True:
            report = dispatch_due(NOW)
            ticks += 1
            sent += report.sent
            if report.errors:
                print("  errors:", report.errors[:3])
            if not report.claimed and not report.left_for_next_tick:
                break
    return time.perf_counter() - started, sent, ticks


def run(kind, slots, latency, api_url, settings):
    url, drop = new_database(kind)
    try:
        app = build_app(url, api_url, **settings)
        logging.getLogger("app").setLevel(logging.WARNING)
        seed(app, slots)
        fake_sendgrid.call(api_url, f"/latency?seconds={latency}", "POST")
        fake_sendgrid.call(api_url, "/reset", "POST")
        seconds, sent, ticks = drain(app)
        stats = fake_sendgrid.call(api_url, "/stats")
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()
        return seconds, sent, ticks, stats
    finally:
        if drop:
            drop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=200, help="the fake's answer time, in ms")
    parser.add_argument(
        "--zero-slots", type=int, default=None, help="slots for the zero-latency run (default: --slots)"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="SEND_CONCURRENCY (default: the app's, 8)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    logging.getLogger("app").setLevel(logging.WARNING)
    settings = {"SEND_CONCURRENCY": args.concurrency} if args.concurrency else {}
    from config import Config

    concurrency = args.concurrency or Config.SEND_CONCURRENCY
    process, api_url = fake_sendgrid.start(args.latency / 1000)
    try:
        print(
            f"{args.slots} due first messages, {args.database}, SEND_CONCURRENCY={concurrency}, "
            f"fake SendGrid answering after {args.latency:g} ms, {os.cpu_count()} cores"
        )
        seconds, sent, ticks, stats = run(args.database, args.slots, args.latency / 1000, api_url, settings)
        limit = args.slots * args.latency / 1000 / concurrency
        ratio = f"{seconds / limit:.3f}" if limit else "-"
        print(
            f"  drain: {seconds:.1f} s for {sent} sent in {ticks} tick(s); limit N × latency / concurrency = "
            f"{limit:.1f} s; ratio {ratio} (goal ≤ 1.15)"
        )
        print(
            f"  fake received {stats['received']}, duplicates {stats['duplicates']} (must be 0), "
            f"peak calls in flight {stats['peak_in_flight']}"
        )
        zero = args.zero_slots or args.slots
        z_seconds, z_sent, _, z_stats = run(args.database, zero, 0, api_url, settings)
        print(
            f"  zero latency: {z_sent} sent in {z_seconds:.1f} s = {z_sent / z_seconds:.0f} slots/s (goal ≥ 500); "
            f"duplicates {z_stats['duplicates']}"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of the dispatching process: {peak:.0f} MB (goal < 250 MB)")
    finally:
        process.terminate()


if __name__ == "__main__":
    main()
