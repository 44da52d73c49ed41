"""The provider interface."""

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


class ProviderError(Exception):
    """A send the provider did not accept.

    ``retryable`` says whether trying again later may succeed (rate limits, outages,
    timeouts) or not (invalid address, rejected content, bad credentials).
    """

    def __init__(self, message, *, retryable, code=None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code

    def __str__(self):
        kind = "retryable" if self.retryable else "permanent"
        code = f" [{self.code}]" if self.code else ""
        return f"{kind}{code}: {self.message}"


class MessageProvider:
    """Sends one message; returns the provider's message id or raises ProviderError."""

    name = "base"

    def send(self, message: OutgoingMessage) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def check(self) -> str:
        """A harmless call that proves the credentials work; returns a short report."""
        return "ok"


_REGISTRY = {}


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
        # Import provider modules lazily so an unused SDK is never a start-up cost.
        from app.providers import outbox  # noqa: F401

        if name not in _REGISTRY:
            raise ValueError(f"unknown {channel} provider {name!r}")
        cache[key] = _REGISTRY[name](app)
    return cache[key]
