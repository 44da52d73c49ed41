"""The default provider: keeps every rendered message in the database, sends nothing.

It simulates a provider's answers for test addresses (documented in the README):
- email domain ``fail.test`` or a phone ending ``9999``: permanent rejection;
- ``flaky.test`` / ``9998``: the first two attempts fail transiently, the third succeeds;
- ``down.test`` / ``9997``: every attempt fails transiently.
"""

import uuid

from sqlalchemy import ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import isoformat, now, utcnow
from app.dbtypes import UTCDateTime
from app.extensions import db
from app.providers.base import MessageProvider, ProviderError, register


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("testimonial_requests.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(5))
    to: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    slot: Mapped[int | None] = mapped_column()
    # accepted | rejected: rejected rows are the simulated failures, kept for diagnosis.
    outcome: Mapped[str] = mapped_column(String(10), default="accepted")
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    def to_dict(self):
        return {
            "id": self.id,
            "request_id": self.request_id,
            "campaign_id": self.campaign_id,
            "channel": self.channel,
            "to": self.to,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "slot": self.slot,
            "outcome": self.outcome,
            "provider_message_id": self.provider_message_id,
            "created_at": isoformat(self.created_at),
        }


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
