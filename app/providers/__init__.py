"""The message-provider seam: the dispatcher only knows ``OutgoingMessage``,
``MessageProvider.send`` and ``ProviderError``. One module per provider."""

from app.providers.base import MessageProvider, OutgoingMessage, ProviderError, get_provider

__all__ = ["MessageProvider", "OutgoingMessage", "ProviderError", "get_provider"]
