"""Four dispatcher processes (``flask dispatch``, each with its pool of eight senders) on
one PostgreSQL database at once: FOR UPDATE SKIP LOCKED claims keep them apart, so the
provider (a fake SendGrid on 127.0.0.1 answering after 50 ms) receives every slot once."""

import json
from collections import Counter

import pytest
from sqlalchemy import select

from app.extensions import db
from app.lifecycle.models import SlotSend, TestimonialRequest
from tests.factories import campaign, order_body, post_order
from tests.fake_http import FakeHTTPServer
from tests.lifecycle.test_dispatch_pool import flask

pytestmark = pytest.mark.postgres


def test_four_dispatcher_processes_send_every_slot_exactly_once(app, database_url, client, clock):
    campaign(clock, delay_days=0)
    for n in range(200):
        customer = {"email": f"c{n}@example.com", "first_name": "Ada"}
        assert post_order(client, order_body(f"evt_{n}", order_id=str(n), customer=customer)).status_code == 202
    db.session.rollback()
    with FakeHTTPServer() as sendgrid:
        sendgrid.reply(202, headers={"X-Message-Id": "sg"}, path="/v3/mail/send", times=None, delay=0.05)
        env = {
            "EMAIL_PROVIDER": "sendgrid",
            "SENDGRID_API_KEY": "SG.t",
            "SENDGRID_API_HOST": sendgrid.url,
            "SEND_CONCURRENCY": "8",
            "LOG_LEVEL": "WARNING",
        }
        processes = [flask(database_url, "dispatch", "--json", env=env) for _ in range(4)]
        outputs = [p.communicate(timeout=300)[0] for p in processes]
        # The next tick, alone: what the four left due goes now. Once in many runs one slot
        # of the 200 was left (a process ends its tick when a claim finds nothing to take,
        # and a row another process holds at that moment is skipped, not waited for).
        later = flask(database_url, "dispatch", "--json", env=env)
        outputs.append(later.communicate(timeout=300)[0])
        received = Counter(int(r.json()["custom_args"]["request_id"]) for r in sendgrid.requests)

    assert [p.returncode for p in [*processes, later]] == [0] * 5, outputs
    reports = [json.loads(out[out.index("{") :]) for out in outputs]
    db.session.rollback()
    unsent = [
        (r.id, r.status, r.claim_id, r.next_send_at, r.attempts, [(e.type, e.detail) for e in r.events])
        for r in db.session.scalars(select(TestimonialRequest).where(TestimonialRequest.sent_at.is_(None)))
    ]
    assert unsent == [], (unsent, reports, [out[-3000:] for out in outputs])
    # A claim that fails (a deadlock, say) is reported here and leaves its slots due.
    assert [r["errors"] for r in reports] == [[]] * 5, reports
    assert sum(r["sent"] for r in reports[:4]) >= 199, reports  # the four sent (nearly) all
    assert sum(r["sent"] for r in reports) == 200, reports
    assert sum(1 for r in reports if r["claimed"]) >= 2, reports  # they really ran side by side
    assert len(received) == 200 and set(received.values()) == {1}  # every slot once, none twice
    db.session.rollback()
    assert {s.status for s in db.session.scalars(select(SlotSend))} == {"sent"}
