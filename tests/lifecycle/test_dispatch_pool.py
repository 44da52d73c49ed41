"""The send pool: several dispatchers each with a pool of senders never send a slot twice,
per-channel rate limits hold at the provider, a SIGKILL mid-tick ends in "interrupted,
outcome unknown" for exactly the slots in flight, and ``flask worker`` runs the scheduler
on its own. Providers are played by a fake HTTP server on 127.0.0.1."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.lifecycle.dispatch import dispatch_due
from app.lifecycle.models import SlotSend
from app.lifecycle.results import INTERRUPTED
from app.outbox.models import OutboxMessage
from tests.factories import campaign, order_body, post_order, request_row
from tests.fake_http import FakeHTTPServer
from tests.provider_helpers import register_rendezvous_provider

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def customer(n):
    return {"email": f"c{n}@example.com", "phone": f"+1555000{n:04d}", "first_name": "Ada"}


def due_orders(client, clock, count, channel="email"):
    campaign(clock, delay_days=0, channel=channel, sms_send_window=None)
    ids = []
    for n in range(count):
        response = post_order(client, order_body(f"evt_{n}", order_id=str(n), customer=customer(n)))
        assert response.status_code == 202, response.get_json()
        ids += response.get_json()["created"]
    db.session.rollback()
    return ids


def sendgrid_settings(api, **more):
    return {
        "EMAIL_PROVIDER": "sendgrid",
        "SENDGRID_API_KEY": "SG.test",
        "SENDGRID_API_HOST": api.url,
        "EMAIL_FROM": "Shop <shop@example.com>",
        **more,
    }


def test_four_dispatchers_with_eight_senders_each_send_every_slot_exactly_once(app, app_factory, client, clock):
    ids = due_orders(client, clock, 80, channel="both")
    register_rendezvous_provider("rendezvous-pool", 4)
    workers = [
        app_factory(
            EMAIL_PROVIDER="rendezvous-pool", SMS_PROVIDER="rendezvous-pool", SEND_CONCURRENCY=8, DISPATCH_BATCH_SIZE=10
        )
        for _ in range(4)
    ]
    start, reports = threading.Barrier(4), [None] * 4

    def run(index):
        with workers[index].app_context():
            start.wait()
            reports[index] = dispatch_due(clock())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)

    assert all(r is not None and r.errors == [] for r in reports), reports
    assert all(r.claimed > 0 for r in reports), [r.claimed for r in reports]  # all four really sent
    assert sum(r.sent for r in reports) == len(ids) == 80
    counts = db.session.execute(
        select(OutboxMessage.request_id, OutboxMessage.channel, func.count()).group_by(
            OutboxMessage.request_id, OutboxMessage.channel
        )
    ).all()
    assert len(counts) == 160 and {n for *_, n in counts} == {1}
    assert {r.status for r in db.session.scalars(select(SlotSend))} == {"sent"}
    assert {request_row(i).status for i in ids} == {"sent"}


def arrivals_per_window(times, window=0.8):
    """The most arrivals in any window of ``window`` seconds (under one second: arrival
    times carry the client's jitter, up to a tenth of a second or two on a busy machine)."""
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_per_channel_rate_limits_hold_at_the_provider(app_factory, clock):
    with FakeHTTPServer() as sendgrid, FakeHTTPServer() as twilio:
        sendgrid.reply(202, headers={"X-Message-Id": "sg"}, path="/v3/mail/send", times=None)
        twilio.reply(201, {"sid": "SM1", "status": "queued"}, times=None)
        arrivals = {"email": [], "sms": []}
        for server, channel in ((sendgrid, "email"), (twilio, "sms")):
            original = server._next_reply

            def stamped(method, path, original=original, channel=channel):
                arrivals[channel].append(time.monotonic())
                return original(method, path)

            server._next_reply = stamped
        app = app_factory(
            **sendgrid_settings(sendgrid),
            SMS_PROVIDER="twilio",
            TWILIO_ACCOUNT_SID="AC" + "1" * 32,
            TWILIO_AUTH_TOKEN="t" * 32,
            TWILIO_FROM="+15550001111",
            TWILIO_API_BASE_URL=twilio.url,
            SEND_CONCURRENCY=8,
            EMAIL_RATE_PER_SECOND=5,
            SMS_RATE_PER_SECOND=2,
        )
        with app.app_context():
            due_orders(app.test_client(), clock, 12, channel="both")
            report = dispatch_due(clock())

    assert (report.sent, report.messages, report.errors) == (12, 24, [])
    assert len(arrivals["email"]) == len(arrivals["sms"]) == 12
    # The very first calls arrive late: the SDKs import and set up their clients on first
    # use (a few tenths of a second on a busy machine), so they bunch up with the next
    # second's; from the second second on, arrivals follow the limiter's starts.
    assert arrivals_per_window(arrivals["email"][5:]) <= 5
    assert arrivals_per_window(arrivals["sms"][2:]) <= 2
    # … and the limit is what held them back, not a slow provider (unlimited, all 24 arrive
    # within a tenth of a second): after the late first calls, 10 SMS at 2/s span 4 s and
    # 7 emails at 5/s span over 1 s, less the client's jitter.
    assert arrivals["sms"][-1] - arrivals["sms"][2] >= 3.5
    assert arrivals["email"][-1] - arrivals["email"][5] >= 0.8


def test_a_tick_whose_budget_ends_claims_nothing_more_and_leaves_the_rest_due(app_factory, clock):
    with FakeHTTPServer() as sendgrid:
        sendgrid.reply(202, headers={"X-Message-Id": "sg"}, path="/v3/mail/send", times=None)
        app = app_factory(
            **sendgrid_settings(sendgrid), SEND_CONCURRENCY=2, EMAIL_RATE_PER_SECOND=4, DISPATCH_TIME_BUDGET_SECONDS=1
        )
        with app.app_context():
            ids = due_orders(app.test_client(), clock, 20)
            report = dispatch_due(clock())
            claimed = db.session.scalar(select(func.count(SlotSend.id)))
            db.session.rollback()

            # 4 calls a second for a one-second budget: a handful claimed, the rest left due.
            assert 2 <= report.claimed <= 10 and report.claimed == report.sent == claimed == len(sendgrid.requests)
            assert report.left_for_next_tick == 20 - report.claimed
            left = [request_row(i) for i in ids if request_row(i).status == "scheduled"]
            assert len(left) == report.left_for_next_tick
            assert all(r.claimed_at is None and r.next_send_at <= clock() for r in left)
            db.session.rollback()
            # the next ticks send the rest, each once
            while dispatch_due(clock()).claimed:
                pass
            assert len(sendgrid.requests) == 20
            assert {request_row(i).status for i in ids} == {"sent"}


def flask(database_url, *args, env=None):
    environment = {
        **os.environ,
        "FLASK_APP": "app",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "x" * 40,
        "LOG_LEVEL": "INFO",
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_sigkill_mid_tick_ends_interrupted_for_exactly_the_slots_in_flight(app, database_url, client, clock):
    ids = due_orders(client, clock, 12)
    with FakeHTTPServer() as sendgrid:
        sendgrid.reply(hang=True, path="/v3/mail/send", times=None)  # the calls are in flight, unanswered
        process = flask(
            database_url,
            "dispatch",
            env={
                "EMAIL_PROVIDER": "sendgrid",
                "SENDGRID_API_KEY": "SG.t",
                "SENDGRID_API_HOST": sendgrid.url,
                "SEND_CONCURRENCY": "4",
            },
        )
        try:
            assert wait_for(lambda: len(sendgrid.requests) == 4), process.stdout.read() if process.poll() else "no send"
            time.sleep(0.3)  # anything else it would do, it has done
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            process.stdout.close()
        handed_over = {int(r.json()["custom_args"]["request_id"]) for r in sendgrid.requests}

    db.session.rollback()
    in_flight = {s.request_id for s in db.session.scalars(select(SlotSend).where(SlotSend.status == "sending"))}
    # Claimed = the four handed over plus, at most, the next four waiting for a sender.
    assert handed_over <= in_flight and len(in_flight) <= 8
    db.session.rollback()
    clock.set(datetime.now(UTC) + timedelta(seconds=app.config["SEND_LEASE_SECONDS"] + 1))

    report = dispatch_due(clock())

    assert report.recovered == len(in_flight)
    for request_id in ids:
        req = request_row(request_id)
        if request_id in in_flight:
            assert req.status == "failed" and req.last_error.startswith(f"email: {INTERRUPTED}")
        else:
            assert req.status == "sent"  # the others were never claimed: sent now, once
    sent_by_outbox = db.session.scalars(select(OutboxMessage.request_id)).all()
    assert sorted(sent_by_outbox) == sorted(set(ids) - in_flight)


def test_flask_worker_runs_the_scheduler_alone_whatever_scheduler_enabled_says(app, database_url, client, clock):
    [request_id] = due_orders(client, clock, 1)
    process = flask(database_url, "worker", env={"SCHEDULER_ENABLED": "false", "SCHEDULER_INTERVAL_SECONDS": "1"})
    try:

        def sent():
            status = request_row(request_id).status
            db.session.rollback()  # SQLite: a transaction left open holds the write lock
            return status == "sent"

        assert wait_for(sent), "the worker did not send the due slot"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "worker: running the scheduler" in output and "worker: stopped" in output


def test_the_pool_claims_ahead_by_the_pace_of_its_answers(app):
    """Claimed and waiting for a sender: twice the senders at first (and with a slow or
    hanging provider, as above), the answers of AHEAD_SECONDS at a fast provider's pace."""
    from types import SimpleNamespace

    from app.lifecycle.sending import AHEAD_SECONDS, SendPool

    class Instant:
        name, rate_limited = "instant", False

        def send(self, message):
            return f"id-{message.n}"

    config = {**app.config, "SEND_CONCURRENCY": 2, "DISPATCH_BATCH_SIZE": 200}
    with SendPool(app, config) as pool:
        assert (pool.depth, pool.free) == (4, 4)
        for n in range(100):
            pool.submit(SimpleNamespace(n=n), SimpleNamespace(channel="email", n=n), Instant())
        assert pool.free == 0  # full: nothing more is claimed until answers come in
        answers = []
        while pool.busy:
            answers += pool.answers()
        assert sorted(a.message_id for a in answers) == sorted(f"id-{n}" for n in range(100))
        assert pool.depth == int(100 * AHEAD_SECONDS) == pool.free  # 100 answers within the last second
    config["DISPATCH_BATCH_SIZE"] = 20
    with SendPool(app, config) as pool:
        assert pool.depth == 4  # a new tick's pool starts from twice its senders again
