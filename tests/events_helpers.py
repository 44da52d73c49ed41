"""Real provider signatures made in the test, the fixtures of the event webhook tests, and
posting helpers for the webhooks.

SendGrid signs ``timestamp + raw body`` with ECDSA P-256 / SHA-256 and sends the base64
DER signature; the key it shows merchants is the base64 DER SubjectPublicKeyInfo. Twilio
signs the public URL plus the sorted form fields (HMAC-SHA1 with the auth token) — we
compute it with the SDK's own ``RequestValidator``.

A webhook test module takes its fixtures from here::

    signer, app = webhook_fixtures()  # an app that checks both providers' signatures
    world = world_fixture()            # fresh apps, each on its own database
"""

import base64
import itertools
import json
import shutil

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.extensions import db
from app.lifecycle.models import TestimonialRequest, TestimonialRequestEvent
from app.optouts.models import OptOut

SENDGRID_PATH = "/webhooks/sendgrid/events"
TWILIO_STATUS_PATH = "/webhooks/twilio/status"
TWILIO_INBOUND_PATH = "/webhooks/twilio/inbound"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
PUBLIC_BASE_URL = "https://reviews.shop.example"  # what Twilio calls (never the test client's host)
T0 = 1795176000  # 2026-11-20T12:00:00Z, the clock's start: when the tests send
SG_TIMESTAMP = str(T0)
PHONE = "+15551234567"  # the customer's (tests.factories.ORDER)
# An app that runs as in production (refuses what it cannot verify).
PRODUCTION = {"PRODUCTION": True, "SECRET_KEY": "a-long-random-production-secret-key", "ORDER_WEBHOOK_SECRET": "s" * 32}


class SendGridSigner:
    """A key pair like SendGrid's: sign bodies, give out the public key as SendGrid shows it."""

    def __init__(self):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def sign(self, raw_body, timestamp=SG_TIMESTAMP):
        signature = self.private_key.sign(timestamp.encode() + raw_body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, raw_body, timestamp=SG_TIMESTAMP):
        return {
            "X-Twilio-Email-Event-Webhook-Signature": self.sign(raw_body, timestamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }


def webhook_settings(signer):
    """Settings under which both providers' webhooks verify: SendGrid's with ``signer``'s key."""
    return {
        "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }


def webhook_fixtures():
    """The fixtures ``signer`` (a SendGrid key pair) and ``app`` (the test's app, context
    pushed, under webhook_settings) of a webhook test module."""

    @pytest.fixture
    def signer():
        return SendGridSigner()

    @pytest.fixture
    def app(app_factory, signer):
        app = app_factory(**webhook_settings(signer))
        with app.app_context():
            yield app

    return signer, app


def world_fixture():
    """A ``world`` fixture: ``world()`` builds a fresh app under webhook_settings on its own
    copy of the migrated database, so each delivery order can run from the same start."""

    @pytest.fixture
    def world(app_factory, tmp_path, migrated_db, signer):
        worlds = itertools.count()

        def build():
            db_file = tmp_path / f"world{next(worlds)}.db"
            shutil.copy(migrated_db, db_file)
            return app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{db_file}", **webhook_settings(signer))

        return build

    return world


def post_sendgrid(client, events, signer=None, *, headers=None, raw=None):
    """POST a list of events (or raw bytes), signed by ``signer`` unless headers are given."""
    body = raw if raw is not None else json.dumps(events).encode()
    if headers is None:
        headers = signer.headers(body) if signer else {}
    return client.post(SENDGRID_PATH, data=body, content_type="application/json", headers=headers)


def sg_event(
    request_id, event, *, timestamp=T0, event_id=None, email="ada@example.com", message_id="msg-1", slot=0, **fields
):
    """One SendGrid event as its webhook sends it (custom args at the top level)."""
    body = {
        "email": email,
        "timestamp": timestamp,
        "event": event,
        "sg_event_id": event_id or f"ev-{event}-{request_id}-{timestamp}",
        "sg_message_id": f"{message_id}.filterdrecv-5645d9c87f-78xgx-1-5F7D2A7B-4.0",
        "smtp-id": f"<{message_id}@ismtpd0001p1lon1.sendgrid.net>",
        "category": [],
        **fields,
    }
    if request_id is not None:
        body.update(request_id=str(request_id), campaign_id="1", slot=str(slot))
    return body


def twilio_signature(url, params, token=TWILIO_TOKEN, algorithm=None):
    """X-Twilio-Signature for a POST of ``params`` to ``url`` (HMAC-SHA1 unless ``algorithm``)."""
    return RequestValidator(token).compute_signature(url, params, algorithm)


def post_twilio(client, path, params, *, token=TWILIO_TOKEN, signature=None, query=""):
    url = PUBLIC_BASE_URL + path + (f"?{query}" if query else "")
    headers = {}
    if signature is None and token:
        signature = twilio_signature(url, params, token)
    if signature:
        headers["X-Twilio-Signature"] = signature
    target = path + (f"?{query}" if query else "")
    return client.post(target, data=params, headers=headers)


def status_params(sid, status, *, error_code=None, to=PHONE):
    params = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": to,
        "From": "+15017122661",
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = str(error_code)
    return params


def inbound_params(body, *, sender=PHONE, sid="SM" + "1" * 32, **extra):
    return {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": sender,
        "To": "+15017122661",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def snapshot(request_ids):
    """What the events left behind, independent of row ids and arrival order."""
    db.session.expire_all()
    requests = []
    for request_id in request_ids:
        req = db.session.get(TestimonialRequest, request_id)
        requests.append(
            {
                "status": req.status,
                "clicked_at": req.clicked_at,
                "sent_at": req.sent_at,
                "next_send_at": req.next_send_at,
                "next_slot": req.next_slot,
                "last_error": req.last_error,
                "cancelled_at": req.cancelled_at,
                "last_event_at": req.last_event_at,
            }
        )
    events = sorted(
        (
            e.request_id,
            e.type,
            e.channel,
            e.slot,
            e.provider,
            e.provider_message_id,
            e.error_code,
            e.detail,
            e.occurred_at,
            e.dedupe_key,
        )
        for e in db.session.scalars(select(TestimonialRequestEvent)).all()
    )
    optouts = sorted((o.channel, o.contact, o.source) for o in db.session.scalars(select(OptOut)).all())
    # The outbox makes random message ids: name them by what they are, so two runs compare.
    names = {}
    for number, request_id in enumerate(request_ids):
        req = db.session.get(TestimonialRequest, request_id)
        names.update({req.email_message_id: f"<email id {number}>", req.sms_message_id: f"<sms id {number}>"})
    names.pop(None, None)

    def plain(value):
        text = str(value)
        for real, name in names.items():
            text = text.replace(real, name)
        return text

    return {"requests": requests, "events": [tuple(plain(v) for v in e) for e in events], "optouts": optouts}
