"""Provider webhooks: SendGrid's Event Webhook and Twilio's status and inbound callbacks.

Verify, record, answer — no provider call, no slow work: providers retry on slow or
failed answers. A request that fails verification gets 401 and writes nothing.
Production refuses unverifiable calls (503) instead of trusting them.
"""

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from twilio.twiml.messaging_response import MessagingResponse

from app.clock import now
from app.events.parsing import EventProblem
from app.events.services import receive_sendgrid_batch, receive_twilio_inbound, receive_twilio_status
from app.extensions import csrf, db
from app.settings import current_settings
from app.webhooks import (
    BodyRefused,
    limit_form_body,
    parse_json,
    problem,
    read_limited_body,
    signatures,
    too_large_message,
)

bp = Blueprint("events", __name__)
log = logging.getLogger("app.events")

SENDGRID_PATH = "/webhooks/sendgrid/events"
TWILIO_STATUS_PATH = "/webhooks/twilio/status"
TWILIO_INBOUND_PATH = "/webhooks/twilio/inbound"


def _record(refused, payload, receive, answer):
    """What each provider webhook does once its signature is checked: stop at a refusal
    (``refused`` is its 401/503 response, or None), read the payload and record it — an
    EventProblem from either is a 400 that writes nothing — then commit and answer."""
    if refused is not None:
        return refused
    try:
        recorded = receive(payload(), now())
    except EventProblem as exc:
        db.session.rollback()
        # Nothing is stored for it: this line is the only trace on the server.
        log.warning("%s refused (400): %s", request.path, str(exc)[:300])
        return problem(400, str(exc))
    db.session.commit()
    return answer(recorded)


def _json(answer):
    return jsonify(answer), 200


# -- SendGrid ----------------------------------------------------------------------------


@bp.post(SENDGRID_PATH)
@csrf.exempt
def sendgrid_events():
    raw = read_limited_body()
    if raw is None:
        return problem(413, too_large_message())
    return _record(_refuse_unverified_sendgrid(raw), lambda: _event_batch(raw), receive_sendgrid_batch, _json)


def _event_batch(raw):
    """The body as SendGrid's list of events. Raises EventProblem (a 400) when it is not one."""
    try:
        events = parse_json(raw)
    except BodyRefused as exc:
        raise EventProblem(exc.message) from exc
    if not isinstance(events, list):
        raise EventProblem("the body must be a JSON array of events (SendGrid's Event Webhook format)")
    return events


def _refuse_unverified_sendgrid(raw):
    key = current_app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not key:
        if current_app.config.get("PRODUCTION"):
            log.error("SendGrid events refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
            return problem(
                503,
                "SendGrid events are not configured on this server: set "
                "SENDGRID_WEBHOOK_PUBLIC_KEY (docs/events.md); unsigned events are not accepted",
            )
        return None
    try:
        verifier = _sendgrid_verifier(key)
    except signatures.KeyInvalid as exc:
        log.error("SendGrid events refused: %s", exc)
        return problem(503, f"{exc}; events are refused until it is fixed (SendGrid retries for 24 hours)")
    headers = request.headers
    if not signatures.sendgrid_signature_valid(
        verifier,
        raw,
        headers.get(signatures.SENDGRID_SIGNATURE_HEADER),
        headers.get(signatures.SENDGRID_TIMESTAMP_HEADER),
    ):
        log.warning("SendGrid events refused: missing or invalid signature")
        return problem(
            401,
            f"missing or invalid {signatures.SENDGRID_SIGNATURE_HEADER} (ECDSA signature of "
            f"{signatures.SENDGRID_TIMESTAMP_HEADER} + the raw body)",
        )
    return None


def _sendgrid_verifier(key):
    # Parsing the key once per process, not per call: events come in bursts.
    cache = current_app.extensions.setdefault("sendgrid_event_webhook", {})
    if key not in cache:
        cache.clear()
        cache[key] = signatures.sendgrid_verifier(key)
    return cache[key]


# -- Twilio ------------------------------------------------------------------------------


@bp.post(TWILIO_STATUS_PATH)
@csrf.exempt
def twilio_status():
    return _record(_refuse_unverified_twilio(), lambda: request.form, receive_twilio_status, _json)


@bp.post(TWILIO_INBOUND_PATH)
@csrf.exempt
def twilio_inbound():
    return _record(_refuse_unverified_twilio(), lambda: request.form, receive_twilio_inbound, _empty_twiml)


def _empty_twiml(answer):
    log.info("twilio inbound: %s", answer)
    # An empty TwiML answer: Twilio itself replies to STOP/START; we never add text.
    return Response(str(MessagingResponse()), status=200, mimetype="text/xml")


TWILIO_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_unverified_twilio():
    config = current_app.config
    limit_form_body()
    if request.mimetype and request.mimetype not in TWILIO_FORM_TYPES:
        # A JSON test call would otherwise read as an empty form: a misleading 401 (the
        # signature of no fields) or "field 'MessageSid' is missing" for a field that is there.
        return problem(
            415,
            "Content-Type must be application/x-www-form-urlencoded: Twilio posts its "
            "callback as form fields (MessageSid=…&MessageStatus=…), not JSON",
        )
    token = config.get("TWILIO_AUTH_TOKEN")
    if not token:
        if config.get("PRODUCTION"):
            log.error("Twilio webhook refused: TWILIO_AUTH_TOKEN is not set")
            return problem(
                503,
                "Twilio webhooks are not configured on this server: set TWILIO_AUTH_TOKEN; "
                "unsigned callbacks are not accepted",
            )
        return None
    url = public_url()
    if not signatures.twilio_signature_valid(
        token,
        url,
        request.form,
        request.headers.get(signatures.TWILIO_SIGNATURE_HEADER),
        request.headers.get(signatures.TWILIO_SETTINGS_HEADER),
    ):
        log.warning("Twilio webhook refused: missing or invalid X-Twilio-Signature for %s", url)
        return problem(
            401,
            f"missing or invalid X-Twilio-Signature (checked against {url}; PUBLIC_BASE_URL must "
            "be the address Twilio calls)",
        )
    return None


def public_url():
    """The URL Twilio signed: ours as the internet sees it (behind a proxy the request's
    own host and scheme differ), with the query string."""
    url = current_settings().public_base_url + request.path
    query = request.query_string.decode("utf-8", "replace")
    return f"{url}?{query}" if query else url
