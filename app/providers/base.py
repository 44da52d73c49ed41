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


class ProviderError(Exception):
    """A send the provider did not accept.

    ``retryable`` says whether trying again later may succeed (rate limits, outages,
    timeouts) or not (invalid address, rejected content, bad credentials).
    ``opt_out`` says the provider knows the recipient unsubscribed (Twilio 21610): the
    dispatcher then adds the contact to the suppression list in the same transaction as
    the failed event. Providers never touch the database themselves.
    ``outcome_unknown`` says the request may have reached the provider and been accepted
    (no answer in time, the connection dropped after the request was sent, a client
    error after the call): trying again could send the message twice, so it is never
    retried on its own (at most once, spec §3 and §7); a person may press Retry. Such an
    error is not retryable and reads "interrupted, outcome unknown …" like a send whose
    process died.
    """

    def __init__(self, message, *, retryable, code=None, opt_out=False, outcome_unknown=False):
        super().__init__(message)
        self.message = message
        self.retryable = retryable and not outcome_unknown
        self.code = code
        self.opt_out = opt_out
        self.outcome_unknown = outcome_unknown

    def __str__(self):
        kind = (
            "interrupted, outcome unknown" if self.outcome_unknown else ("retryable" if self.retryable else "permanent")
        )
        code = f" [{self.code}]" if self.code else ""
        return f"{kind}{code}: {self.message}"


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
