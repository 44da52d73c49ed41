"""Twilio SMS (``SMS_PROVIDER=twilio``) through the official SDK.

Sends from ``TWILIO_MESSAGING_SERVICE_SID`` when set, else from ``TWILIO_FROM``; asks
Twilio to report delivery to ``PUBLIC_BASE_URL/webhooks/twilio/status``; keeps the
message SID as the provider message id.

Errors (docs/providers.md): Twilio codes 21211, 21408, 21606, 21610, 21612, 21614 and any
other 4xx are permanent; 21610 (the recipient replied STOP) also puts the number on our
suppression list — the dispatcher does that, in the transaction that records the failure,
because a provider is called with no database transaction open and never writes to the
database. 429 / 20429 and 5xx answers and failures to connect are retryable. Each error
carries its kind (``CODES``: the project's one table of Twilio codes, for sends and for
the delivery reports of the status callback).

A send that fails *after* the request went out (no answer in time, the connection closed
before the answer, a client error on the way back) may have created the message: it is
"outcome unknown", never retried on its own, because Twilio's Messages API has no
idempotency key and a retry could text the customer twice (at most once, spec §3, §7).
requests wraps failures to connect in urllib3's ``MaxRetryError`` (the SDK does not
retry); a read timeout or an aborted connection comes through without it.
"""

import ipaddress
import logging
import threading
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import MaxRetryError

from app.providers.base import (
    ADDRESS,
    OPTED_OUT,
    RATE_LIMITED,
    REFUSED,
    SETUP,
    UNDELIVERED,
    MessageProvider,
    ProviderError,
    register,
)

log = logging.getLogger("app.providers")

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
UNSUBSCRIBED = 21610
PERMANENT_CODES = {
    21211: "invalid 'To' phone number",
    21408: "sending to this region is not enabled on the Twilio account",
    21606: "the 'From' number cannot send this message",
    UNSUBSCRIBED: "the recipient unsubscribed (replied STOP)",
    21612: "Twilio cannot route a message to this number",
    21614: "the 'To' number is not a mobile number",
}
RATE_LIMIT_CODE = 20429
# Every Twilio error code we know (https://www.twilio.com/docs/api/errors), at send time
# or in a status callback: what kind of failure it is and what it means, in the merchant's
# words. The one table of Twilio codes in the project.
CODES = {
    20003: (SETUP, "Twilio rejected your account credentials"),
    21211: (ADDRESS, "the number is not valid"),
    21408: (SETUP, "sending to this country is not enabled on your Twilio account"),
    21606: (SETUP, "your Twilio 'From' number cannot send this message"),
    UNSUBSCRIBED: (OPTED_OUT, "the customer replied STOP"),
    21612: (ADDRESS, "the number cannot receive texts"),
    21614: (ADDRESS, "the number is not a mobile number"),
    30003: (UNDELIVERED, "the phone was unreachable (switched off or out of coverage)"),
    30004: (UNDELIVERED, "the number blocked the message"),
    30005: (ADDRESS, "the number does not exist"),
    30006: (ADDRESS, "the number is a landline or its carrier cannot be reached"),
    30007: (UNDELIVERED, "the carrier filtered the message as spam"),
    30008: (UNDELIVERED, "the carrier reported an unknown error"),
    30034: (SETUP, "your sender number is not registered for A2P 10DLC"),
}
# Twilio MessageStatus values that say the message did not arrive.
FAILED_STATUSES = ("undelivered", "failed")


@register("twilio")
class TwilioProvider(MessageProvider):
    channels = ("sms",)

    def __init__(self, app):
        config = app.config
        self.account_sid = config.get("TWILIO_ACCOUNT_SID")
        self.auth_token = config.get("TWILIO_AUTH_TOKEN")
        self.from_number = config.get("TWILIO_FROM")
        self.messaging_service_sid = config.get("TWILIO_MESSAGING_SERVICE_SID")
        self.api_base_url = config.get("TWILIO_API_BASE_URL")
        self.timeout = float(config.get("TWILIO_TIMEOUT_SECONDS") or 10)
        self.status_callback = status_callback_url(config.get("PUBLIC_BASE_URL"))
        # One SDK client (and its connection pool) per thread: requests sessions are not
        # documented as thread-safe, and the scheduler and the CLI may both send.
        self._local = threading.local()

    def send(self, message):
        client = self._client()
        params = {"to": message.to, "body": message.text}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_number
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            created = client.messages.create(**params)
        except Exception as exc:
            raise classify(exc, sending=True) from exc
        return created.sid

    def check(self):
        """Fetch our own account record: proves the credentials and that it is active."""
        client = self._client()
        if not (self.from_number or self.messaging_service_sid):
            raise ProviderError(
                "set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID", retryable=False, code="config", kind=SETUP
            )
        try:
            account = client.api.v2010.accounts(self.account_sid).fetch()
        except Exception as exc:
            error = classify(exc)
            if isinstance(exc, TwilioException) and (error.code == 20003 or getattr(exc, "status", None) == 401):
                error = ProviderError(
                    f"Twilio rejected the account SID / auth token: {_error_text(exc)}",
                    retryable=False,
                    code=error.code,
                    kind=SETUP,
                )
            raise error from exc
        if account.status != "active":
            raise ProviderError(
                f"the Twilio account {self.account_sid} is {account.status}; it cannot send",
                retryable=False,
                code=f"account-{account.status}",
                kind=SETUP,
            )
        sender = (
            f"messaging service {self.messaging_service_sid}"
            if self.messaging_service_sid
            else f"from {self.from_number}"
        )
        parts = [f"account {account.friendly_name or self.account_sid} is active; sending {sender}"]
        if str(account.type).lower() == "trial":
            parts.append("trial account: messages reach verified numbers only")
        parts.append(
            f"status callbacks to {self.status_callback}"
            if self.status_callback
            else "no status callbacks: PUBLIC_BASE_URL is not reachable from the internet"
        )
        return "; ".join(parts)

    def _client(self):
        if not (self.account_sid and self.auth_token):
            raise ProviderError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set", retryable=False, code="config", kind=SETUP
            )
        client = getattr(self._local, "client", None)
        if client is None:
            # The SDK's HTTP client has no timeout and no retries by default.
            client = Client(self.account_sid, self.auth_token, http_client=TwilioHttpClient(timeout=self.timeout))
            if self.api_base_url:
                client.api.base_url = self.api_base_url.rstrip("/")
            self._local.client = client
        return client


def status_callback_url(public_base_url):
    """Where Twilio reports delivery; None when Twilio could never reach it (localhost)."""
    if not public_base_url:
        return None
    host = urlsplit(public_base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified:
            return None
    return public_base_url.rstrip("/") + STATUS_CALLBACK_PATH


def classify(exc, *, sending=False):
    """A ProviderError for anything the SDK raised (see the module docstring).

    ``sending``: the call was a send, so an error after the request went out means the
    outcome is unknown (a check is harmless to repeat: there it is only transient)."""
    if isinstance(exc, TwilioException) and hasattr(exc, "status"):
        status, code = _int(exc.status), _int(exc.code)
        text = _error_text(exc)
        if code in PERMANENT_CODES:
            return ProviderError(
                f"{PERMANENT_CODES[code]}: {text}",
                retryable=False,
                code=code,
                kind=CODES[code][0],
            )
        if status == 429 or code == RATE_LIMIT_CODE:
            return ProviderError(
                f"Twilio rate limit reached: {text}", retryable=True, code=code or status, kind=RATE_LIMITED
            )
        if status is not None and status >= 500:
            return ProviderError(f"Twilio is unavailable: {text}", retryable=True, code=code or status)
        if status is not None and 400 <= status < 500:
            return ProviderError(
                f"Twilio refused the request: {text}",
                retryable=False,
                code=code or status,
                kind=CODES.get(code, (REFUSED,))[0],
            )
        return ProviderError(f"unexpected Twilio answer: {text}", retryable=True, code=code or status)
    if sending and not isinstance(exc, ProviderError) and not _never_connected(exc):
        return outcome_unknown(exc)
    if isinstance(exc, requests.Timeout):
        return ProviderError("Twilio did not answer in time (timeout)", retryable=True, code="timeout")
    if isinstance(exc, requests.ConnectionError):
        return ProviderError(f"could not reach Twilio: {str(exc)[:300]}", retryable=True, code="connection")
    if isinstance(exc, requests.RequestException):
        return ProviderError(f"network error talking to Twilio: {str(exc)[:300]}", retryable=True, code="network")
    if isinstance(exc, ProviderError):
        return exc
    log.exception("twilio client raised unexpectedly")
    return ProviderError(f"unexpected Twilio client error: {exc!r}", retryable=True, code="unexpected")


def report_failure(status, error_code):
    """A status callback that says the message did not arrive → (kind, message): the kind
    from the code's entry (an unknown code: undelivered), the message in Twilio's terms
    (the callback carries only the status and the code)."""
    known = CODES.get(_int(error_code))
    if known is None:
        return UNDELIVERED, f"Twilio reported the message {status}"
    return known


def meaning(failure):
    """What the failure's Twilio code means, in the merchant's words (None: not a code we know)."""
    known = CODES.get(_int(failure.code))
    return known[1] if known else None


def _never_connected(exc):
    """True when the request cannot have reached Twilio: the connection was never made,
    or the request was invalid before anything was sent."""
    if isinstance(exc, requests.ConnectionError):
        return bool(exc.args) and isinstance(exc.args[0], MaxRetryError)
    if isinstance(exc, requests.RequestException):
        return not isinstance(
            exc, (requests.Timeout, requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
        )
    return False


def outcome_unknown(exc):
    may = "Twilio may have accepted the message, so it is not sent again automatically"
    if isinstance(exc, requests.Timeout):
        return ProviderError(
            f"Twilio did not answer in time (timeout); {may}", retryable=False, code="timeout", outcome_unknown=True
        )
    if isinstance(exc, requests.RequestException):
        return ProviderError(
            f"the connection to Twilio closed before its answer ({str(exc)[:300]}); {may}",
            retryable=False,
            code="connection",
            outcome_unknown=True,
        )
    log.exception("twilio send raised unexpectedly")
    return ProviderError(
        f"unexpected Twilio client error: {exc!r}; {may}", retryable=False, code="unexpected", outcome_unknown=True
    )


def _error_text(exc):
    if isinstance(exc, TwilioServiceException):
        text = exc.title + (f" - {exc.detail}" if exc.detail else "")
    elif isinstance(exc, TwilioRestException):
        text = exc.msg or "no details"
    else:  # pragma: no cover - every TwilioException with a status is one of the two
        text = repr(exc)
    return f"{text} (HTTP {exc.status})"


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
