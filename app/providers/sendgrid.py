"""SendGrid email (``EMAIL_PROVIDER=sendgrid``) through the official SDK.

Every message carries our request id, campaign id and slot as custom args (SendGrid
echoes them on every event, so the event webhook maps events back without relying on
``sg_message_id``), both content parts, and the RFC 2369 / RFC 8058 unsubscribe headers.

Errors (docs/providers.md): 408, 429 and 5xx answers and failures to connect are
retryable; any other 4xx (400 bad request, 401 bad key, 403 unverified sender or missing
permission, 413 too large) is permanent. The error text keeps SendGrid's own message;
the HTTP status is the error code.

A send that fails *after* the request went out (no answer in time, the connection closed
before the answer) may have been accepted: it is "outcome unknown", never retried on its
own, because SendGrid's mail/send has no idempotency key and a retry could deliver the
message twice (at most once, spec §3, §7). urllib wraps errors raised while connecting
and sending in ``URLError``; errors while waiting for the answer come through bare.
"""

import http.client
import json
import logging
import urllib.error
from datetime import UTC, datetime
from email.utils import parseaddr
from urllib.parse import quote

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Email, Header, Mail, MailSettings, ReplyTo, SandBoxMode

from app.providers.base import (
    ADDRESS,
    OPTED_OUT,
    RATE_LIMITED,
    SETUP,
    UNDELIVERED,
    MessageProvider,
    ProviderError,
    register,
)
from config import DEFAULT_EMAIL_FROM

log = logging.getLogger("app.providers")

MAIL_SEND_SCOPE = "mail.send"

# The project's one table of SendGrid codes: what each means, in the merchant's words.
# At send time the code is the HTTP status (or ours: ``scope``, ``config``).
SETUP_CODES = {
    "401": "SendGrid rejected the API key",
    "403": "SendGrid refused the sender (unverified sender or missing permission)",
    "413": "the message is too large for SendGrid",
    "scope": "the SendGrid API key may not send mail",
}
# A delivery report's code is the SMTP status when SendGrid gives one, else the bounce
# type or the event (``dropped``); what it means follows from the kind the report got.
DROPPED = "dropped"
REPORT_MEANINGS = {
    "bounce": {
        ADDRESS: "the receiving mail server says the address does not exist",
        UNDELIVERED: "the receiving mail server blocked it",
    },
    DROPPED: {
        ADDRESS: "SendGrid will not send to an address that bounced before",
        OPTED_OUT: "the customer unsubscribed or reported an earlier email as spam",
    },
}
DROPPED_REASONS = (("unsubscribe", OPTED_OUT), ("spam", OPTED_OUT), ("bounce", ADDRESS), ("invalid", ADDRESS))


@register("sendgrid")
class SendGridProvider(MessageProvider):
    channels = ("email",)

    def __init__(self, app):
        config = app.config
        self.api_key = config.get("SENDGRID_API_KEY")
        self.host = (config.get("SENDGRID_API_HOST") or "https://api.sendgrid.com").rstrip("/")
        self.timeout = float(config.get("SENDGRID_TIMEOUT_SECONDS") or 10)
        self.sandbox = bool(config.get("SENDGRID_SANDBOX"))
        self.email_from = config.get("EMAIL_FROM") or ""
        self.shop_name = config.get("SHOP_NAME")
        self.mailto = config.get("EMAIL_UNSUBSCRIBE_MAILTO") or parseaddr(self.email_from)[1]

    # -- sending ---------------------------------------------------------------------

    def send(self, message):
        client = self._client()
        try:
            mail = self.build_mail(message)
        except Exception as exc:  # nothing was sent: the same message would fail again
            raise ProviderError(
                f"could not build the SendGrid message: {exc!r}", retryable=False, code="build"
            ) from exc
        try:
            response = client.send(mail)
        except Exception as exc:
            raise classify(exc, "send") from exc
        # SendGrid's id for the message; its events carry it as the prefix of sg_message_id.
        return response.headers.get("X-Message-Id")

    def build_mail(self, message):
        """The v3 mail/send body for one message (a dict, as SendGrid will receive it)."""
        mail = Mail(
            from_email=self.sender(message.sender),
            to_emails=message.to,
            subject=message.subject or self.shop_name or "A quick favour",
            plain_text_content=message.text,
            html_content=message.html or None,
        )
        # A list of CustomArg: a dict would keep only its first item.
        mail.custom_arg = [
            CustomArg("request_id", str(message.request_id)),
            CustomArg("campaign_id", str(message.campaign_id)),
            CustomArg("slot", str(message.slot)),
        ]
        mail.header = unsubscribe_headers(message.unsubscribe_url, self.mailto)
        if message.reply_to:
            mail.reply_to = ReplyTo(message.reply_to)
        if self.sandbox:
            mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
        return mail.get()

    def sender(self, given=None):
        """The From of a message: the shop's Settings when the message carries them, else
        EMAIL_FROM (and SHOP_NAME as the name)."""
        name, address = parseaddr(given or self.email_from)
        return Email(address, name or self.shop_name or None)

    # -- checking --------------------------------------------------------------------

    def check(self):
        """``GET /v3/scopes``: proves the key works and may send mail; sends nothing."""
        client = self._client()
        if not self.email_from or self.email_from == _default_email_from():
            raise ProviderError(
                "EMAIL_FROM is not set: use a sender verified in SendGrid", retryable=False, code="config", kind=SETUP
            )
        try:
            response = client.client.scopes.get()
        except Exception as exc:
            raise classify(exc, "check") from exc
        try:
            scopes = json.loads(response.body or b"{}").get("scopes") or []
        except (ValueError, AttributeError):
            raise ProviderError(
                "SendGrid answered /v3/scopes with something that is not JSON",
                retryable=True,
                code=response.status_code,
            ) from None
        if MAIL_SEND_SCOPE not in scopes:
            raise ProviderError(
                f'the API key works but lacks the {MAIL_SEND_SCOPE} scope; give it "Mail Send" '
                "access in SendGrid (Settings → API Keys)",
                retryable=False,
                code="scope",
                kind=SETUP,
            )
        report = f"API key accepted with the {MAIL_SEND_SCOPE} scope; sending as {self.email_from}"
        if self.sandbox:
            report += " (sandbox mode: SendGrid validates but delivers nothing)"
        return report

    def _client(self):
        if not self.api_key:
            raise ProviderError("SENDGRID_API_KEY is not set", retryable=False, code="config", kind=SETUP)
        client = SendGridAPIClient(api_key=self.api_key, host=self.host)
        # The SDK waits forever by default; child clients inherit this.
        client.client.timeout = self.timeout
        return client


def unsubscribe_headers(unsubscribe_url, mailto):
    """List-Unsubscribe (link + mailto) and, with a link, RFC 8058 one-click."""
    targets = []
    if unsubscribe_url:
        targets.append(f"<{unsubscribe_url}>")
    if mailto:
        targets.append(f"<mailto:{mailto}?subject={quote('unsubscribe')}>")
    if not targets:
        return []
    headers = [Header("List-Unsubscribe", ", ".join(targets))]
    if unsubscribe_url:
        headers.append(Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


def classify(exc, action):
    """A ProviderError for anything the SDK raised (see the module docstring)."""
    if isinstance(exc, HTTPError):
        status = exc.status_code
        text = error_text(exc.body) or exc.reason or "no details"
        if status == 429:
            return ProviderError(
                f"SendGrid rate limit reached (429): {text}{reset_hint(exc.headers)}",
                retryable=True,
                code=429,
                kind=RATE_LIMITED,
            )
        if status == 408 or status >= 500:
            return ProviderError(f"SendGrid is unavailable ({status}): {text}", retryable=True, code=status)
        what = {
            401: "SendGrid rejected the API key",
            403: "SendGrid refused access (account suspended or key without permission)"
            if action == "check"
            else "SendGrid refused the message (unverified sender or missing permission)",
            413: "the message is too large for SendGrid",
        }.get(status, f"SendGrid refused the {'check' if action == 'check' else 'message'}")
        kind = SETUP if str(status) in SETUP_CODES else None
        return ProviderError(f"{what} ({status}): {text}", retryable=False, code=status, kind=kind)
    if action == "send" and not isinstance(exc, (urllib.error.URLError, ProviderError)):
        return outcome_unknown(exc)
    if _is_timeout(exc):
        return ProviderError("SendGrid did not answer in time (timeout)", retryable=True, code="timeout")
    if isinstance(exc, (OSError, http.client.HTTPException)):
        reason = getattr(exc, "reason", None) or exc
        return ProviderError(f"could not reach SendGrid: {reason}", retryable=True, code="connection")
    if isinstance(exc, ProviderError):
        return exc
    log.exception("sendgrid %s raised unexpectedly", action)
    return ProviderError(f"unexpected SendGrid client error: {exc!r}", retryable=True, code="unexpected")


def outcome_unknown(exc):
    """The request reached SendGrid (or may have) and no answer came back."""
    may = "SendGrid may have accepted the message, so it is not sent again automatically"
    if isinstance(exc, TimeoutError):
        return ProviderError(
            f"SendGrid did not answer in time (timeout); {may}", retryable=False, code="timeout", outcome_unknown=True
        )
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return ProviderError(
            f"the connection to SendGrid closed before its answer ({exc!r}); {may}",
            retryable=False,
            code="connection",
            outcome_unknown=True,
        )
    log.exception("sendgrid send raised unexpectedly")
    return ProviderError(
        f"unexpected SendGrid client error: {exc!r}; {may}", retryable=False, code="unexpected", outcome_unknown=True
    )


def report_failure(event, bounce_type, reason, status):
    """A ``bounce`` or ``dropped`` event → (kind, code, message): the code is the SMTP
    status, else the bounce type or the event; the message is SendGrid's reason."""
    message = reason or "no reason given"
    code = status or bounce_type or event
    if event == DROPPED:
        lowered = message.lower()
        return next((kind for word, kind in DROPPED_REASONS if word in lowered), UNDELIVERED), code, message
    return (UNDELIVERED if bounce_type == "blocked" else ADDRESS), code, message


def meaning(failure):
    """What the failure means, in the merchant's words (None: nothing more than its kind)."""
    if failure.reported:
        event = DROPPED if failure.code == DROPPED else "bounce"
        return REPORT_MEANINGS[event].get(failure.kind)
    return SETUP_CODES.get(failure.code or "")


def error_text(body):
    """SendGrid's messages from an error body ``{"errors": [{"message", "field"}]}``."""
    if not body:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        errors = json.loads(raw).get("errors") or []
    except (ValueError, AttributeError):
        return raw.strip()[:300]
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        text = str(error.get("message") or "").strip()
        if error.get("field"):
            text = f"{text} (field {error['field']})"
        if text:
            parts.append(text)
    return "; ".join(parts) or raw.strip()[:300]


def reset_hint(headers):
    value = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        return f"; the limit resets at {datetime.fromtimestamp(int(value), UTC):%Y-%m-%d %H:%M:%S} UTC"
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _is_timeout(exc):
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, TimeoutError)


def _default_email_from():
    return DEFAULT_EMAIL_FROM
