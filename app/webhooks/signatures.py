"""Who sent this webhook: the order webhook's and Shopify's HMAC of the body, SendGrid's
Signed Event Webhook and Twilio's X-Twilio-Signature.

The HMACs are compared in constant time; SendGrid's and Twilio's checks use the providers'
own SDK code. Every way a signature can be malformed (bad base64, a DER blob that is not a
signature, a missing header, a body that is not UTF-8) ends as "not verified", never as an
exception.
"""

import base64
import binascii
import hashlib
import hmac

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

SENDGRID_SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE  # X-Twilio-Email-Event-Webhook-Signature
SENDGRID_TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP  # X-Twilio-Email-Event-Webhook-Timestamp
TWILIO_SIGNATURE_HEADER = SIGNATURE_HEADER
TWILIO_SETTINGS_HEADER = SIGNATURE_SETTINGS_HEADER  # names HMAC_SHA256 when Twilio uses it


def order_signature_valid(secret, raw_body, header):
    """X-Webhook-Signature is ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest().encode()
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    given = header[len("sha256=") :].strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def shopify_hmac_valid(secret, raw_body, header):
    """X-Shopify-Hmac-Sha256 is the base64 HMAC-SHA256 of the raw body."""
    if not header:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


class KeyInvalid(ValueError):
    """SENDGRID_WEBHOOK_PUBLIC_KEY is not a usable key (a configuration error)."""


def sendgrid_verifier(public_key):
    """An ``EventWebhook`` for the key shown in SendGrid (Mail Settings → Signed Event
    Webhook): base64 DER SubjectPublicKeyInfo of an ECDSA P-256 key."""
    key_text = "".join(str(public_key).split())  # pasted keys often carry line breaks
    try:
        verifier = EventWebhook(key_text)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyInvalid(f"SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key ({exc})") from None
    if not isinstance(verifier.public_key, ec.EllipticCurvePublicKey):
        raise KeyInvalid("SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve (ECDSA) public key")
    return verifier


def sendgrid_signature_valid(verifier, raw_body, signature, timestamp):
    """True when ``signature`` is SendGrid's ECDSA signature of ``timestamp + raw body``."""
    if not signature or not timestamp:
        return False
    try:
        payload = raw_body.decode("utf-8")  # the SDK signs str: bytes would raise TypeError
        return verifier.verify_signature(payload, signature.strip(), timestamp.strip())
    except (InvalidSignature, binascii.Error, ValueError, TypeError, UnicodeError):
        return False


def twilio_signature_valid(auth_token, url, params, signature, settings_header=None):
    """Twilio's HMAC (SHA-1 with the auth token, or SHA-256 when the signature-settings
    header says so) of the public URL plus the sorted form fields."""
    if not signature:
        return False
    algorithm = get_signature_algorithm(settings_header)
    try:
        return RequestValidator(auth_token).validate(url, params, signature.strip(), algorithm)
    except (ValueError, TypeError, UnicodeError):
        return False


def webhook_config_problems(config):
    """What production refuses to start on (app.check_production_config)."""
    problems = []
    key = config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if config.get("EMAIL_PROVIDER") == "sendgrid" and not key:
        problems.append(
            "EMAIL_PROVIDER=sendgrid needs SENDGRID_WEBHOOK_PUBLIC_KEY (turn on the Signed Event Webhook in "
            "SendGrid; unsigned delivery and unsubscribe events would be accepted from anyone)"
        )
    if key:
        try:
            sendgrid_verifier(key)
        except KeyInvalid as exc:
            problems.append(str(exc))
    return problems
