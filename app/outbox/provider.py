"""The default provider: keeps every rendered message in the database, sends nothing.

It simulates a provider's answers for test addresses (documented in the README):
- email domain ``fail.test`` or a phone ending ``9999``: permanent rejection;
- ``flaky.test`` / ``9998``: the first two attempts fail transiently, the third succeeds;
- ``down.test`` / ``9997``: every attempt fails transiently.
"""

import uuid

from sqlalchemy import func, select

from app.clock import now
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.providers.base import ADDRESS, MessageProvider, ProviderError, register


def _simulated_behaviour(channel, to):
    if channel == "email":
        domain = to.rsplit("@", 1)[-1].lower()
        return {"fail.test": "fail", "flaky.test": "flaky", "down.test": "down"}.get(domain)
    return {"9999": "fail", "9998": "flaky", "9997": "down"}.get(to[-4:])


@register("outbox")
class OutboxProvider(MessageProvider):
    """Stores messages in its own short transaction, so a stored message is never lost to
    a later rollback of the dispatcher's work (like a real provider's acceptance)."""

    rate_limited = False  # nothing leaves the machine: no carrier to protect

    def __init__(self, app):
        self.app = app

    def send(self, message):
        behaviour = _simulated_behaviour(message.channel, message.to)
        with db.engine.begin() as conn:
            if behaviour == "flaky":
                earlier = conn.scalar(
                    select(func.count(OutboxMessage.id)).where(
                        OutboxMessage.to == message.to, OutboxMessage.outcome == "rejected"
                    )
                )
            provider_message_id = None
            if behaviour == "fail":
                outcome, error = (
                    "rejected",
                    ProviderError(
                        f"recipient {message.to} rejected (simulated permanent failure)",
                        retryable=False,
                        code="outbox-rejected",
                        kind=ADDRESS,
                    ),
                )
            elif behaviour == "down" or (behaviour == "flaky" and earlier < 2):
                outcome, error = (
                    "rejected",
                    ProviderError(
                        "provider unavailable (simulated transient failure)",
                        retryable=True,
                        code="outbox-unavailable",
                    ),
                )
            else:
                outcome, error = "accepted", None
                provider_message_id = f"outbox-{uuid.uuid4().hex[:20]}"
            conn.execute(
                OutboxMessage.__table__.insert().values(
                    request_id=message.request_id,
                    campaign_id=message.campaign_id,
                    channel=message.channel,
                    to=message.to,
                    subject=message.subject,
                    text=message.text,
                    html=message.html,
                    slot=message.slot,
                    outcome=outcome,
                    provider_message_id=provider_message_id,
                    created_at=now(),
                )
            )
        if error:
            raise error
        return provider_message_id

    def check(self):
        return "outbox provider: messages are stored in the database, nothing leaves this machine"
