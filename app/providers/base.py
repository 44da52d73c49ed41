"""The provider interface."""

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

from flask import current_app


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # email | sms
    to: str
    subject: str | None
    html: str | None
    text: str
    request_id: int
    campaign_id: int
    slot: int
    unsubscribe_url: str | None = None
    sender: str | None = None  # "Name <address>" (email): the shop's Settings; None: the provider's default
    reply_to: str | None = None


# What kind of failure it is: the dashboard explains each kind in the merchant's words
# (app/lifecycle/failures.py). The provider that answered decides the kind, from its own
# codes (app/providers/twilio.py, app/providers/sendgrid.py, app/providers/outbox.py).
UNAVAILABLE = "unavailable"  # outage, timeout, network: trying again later usually works
RATE_LIMITED = "rate_limited"
ADDRESS = "address"  # this email address / phone number cannot receive: correct it
OPTED_OUT = "opted_out"
TEMPLATE = "template"  # our message template could not be filled in: nothing was sent
SETUP = "setup"  # our provider account or settings: fix the settings
UNDELIVERED = "undelivered"  # accepted, then the receiving side did not deliver it
REFUSED = "refused"  # refused for good, cause not more specific
INTERRUPTED = "interrupted"  # it may have been sent: the answer never came back
UNKNOWN = "unknown"  # recorded before failures were stored as data, and unreadable
KINDS = (UNAVAILABLE, RATE_LIMITED, ADDRESS, OPTED_OUT, TEMPLATE, SETUP, UNDELIVERED, REFUSED, INTERRUPTED, UNKNOWN)


@dataclass(frozen=True)
class Failure:
    """Why one message did not get through, as data (stored on ``slot_sends`` per attempt
    and on the request's ``failed`` events; every sentence about it is built from these).

    ``code`` is the provider's code (an HTTP status, a Twilio error code, a SendGrid bounce
    type) or ours for failures before or around the call (``template``, ``timeout``,
    ``config``…); ``message`` is the provider's own text (or ours when no provider answered).
    ``reported``: a delivery report that came later, after the provider accepted the message.
    """

    channel: str | None
    provider: str | None
    code: str | None
    retryable: bool
    message: str
    kind: str
    reported: bool = False

    @property
    def state(self):
        """One word for the technical line: retryable, permanent, undelivered, interrupted."""
        if self.kind == INTERRUPTED:
            return "interrupted, outcome unknown"
        if self.reported:
            return "undelivered"
        return "retryable" if self.retryable else "permanent"

    def summary(self):
        """The technical line, as logs, the CLI and the CSV export show it:
        ``permanent [21211]: invalid 'To' phone number: …``."""
        code = f" [{self.code}]" if self.code else ""
        text = f"{self.state}{code}: {self.message or 'no details'}"
        return f"{text} (reported by {self.provider})" if self.reported and self.provider else text


class ProviderError(Exception):
    """A send the provider did not accept.

    ``retryable`` says whether trying again later may succeed (rate limits, outages,
    timeouts) or not (invalid address, rejected content, bad credentials).
    ``kind`` says what went wrong (the constants above); the provider sets it from its own
    codes. Without one: ``unavailable`` when retryable, else ``refused``.
    ``opt_out`` (kind ``opted_out``) says the provider knows the recipient unsubscribed
    (Twilio 21610): the dispatcher records the failure and reports it
    (``app.lifecycle.results.send_refused``); the suppression list takes the contact, in
    the same transaction. Providers never touch the database themselves.
    ``outcome_unknown`` says the request may have reached the provider and been accepted
    (no answer in time, the connection dropped after the request was sent, a client
    error after the call): trying again could send the message twice, so it is never
    retried on its own (at most once, spec §3 and §7); a person may press Retry. Such an
    error is not retryable, of kind ``interrupted``, like a send whose process died.
    """

    def __init__(self, message, *, retryable, code=None, kind=None, outcome_unknown=False):
        super().__init__(message)
        self.message = message
        self.retryable = retryable and not outcome_unknown
        self.code = code
        self.outcome_unknown = outcome_unknown
        if outcome_unknown:
            kind = INTERRUPTED
        self.kind = kind or (UNAVAILABLE if self.retryable else REFUSED)

    @property
    def opt_out(self):
        return self.kind == OPTED_OUT

    def failure(self, channel, provider):
        """This error as data, for the channel and provider that answered."""
        return Failure(
            channel=channel,
            provider=provider,
            code=str(self.code) if self.code is not None else None,
            retryable=self.retryable,
            message=self.message,
            kind=self.kind,
        )

    def __str__(self):
        return self.failure(None, None).summary()


class MessageProvider(ABC):
    """Sends one message; returns the provider's message id or raises ProviderError."""

    name = "base"
    channels = ("email", "sms")  # the channels this provider can carry
    rate_limited = True  # its calls count against EMAIL_/SMS_RATE_PER_SECOND

    @abstractmethod
    def send(self, message: OutgoingMessage) -> str:
        """The provider's message id, or ProviderError."""

    def check(self) -> str:
        """A harmless call that proves the credentials work; returns a short report or
        raises ProviderError (``retryable`` then means "transient: try the check again")."""
        return "ok"


_REGISTRY = {}
# Imported on first use only, so an unused SDK costs nothing and a provider that is not
# configured never breaks start-up.
PROVIDER_MODULES = {
    "outbox": "app.outbox.provider",
    "sendgrid": "app.providers.sendgrid",
    "twilio": "app.providers.twilio",
}


def register(name):
    def wrap(cls):
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return wrap


def failure_meaning(failure):
    """Plain words for a failure's code, from the table of the provider that gave it
    (each provider module's ``meaning(failure)``); None when the code has no entry."""
    module = PROVIDER_MODULES.get(failure.provider or "")
    if module is None:
        return None
    meaning = getattr(importlib.import_module(module), "meaning", None)
    return meaning(failure) if meaning is not None else None


def get_provider(channel, app=None):
    """The provider configured for a channel (``EMAIL_PROVIDER`` / ``SMS_PROVIDER``)."""
    app = app or current_app._get_current_object()
    name = app.config["EMAIL_PROVIDER" if channel == "email" else "SMS_PROVIDER"]
    cache = app.extensions.setdefault("providers", {})
    key = (channel, name)
    if key not in cache:
        if name in PROVIDER_MODULES:
            importlib.import_module(PROVIDER_MODULES[name])
        if name not in _REGISTRY:
            raise ValueError(f"unknown {channel} provider {name!r}")
        if channel not in _REGISTRY[name].channels:
            raise ValueError(f"provider {name!r} cannot send {channel}")
        cache[key] = _REGISTRY[name](app)
    return cache[key]
