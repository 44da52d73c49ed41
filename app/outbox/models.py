"""The messages the outbox provider stored instead of sending them."""

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import isoformat, utcnow
from app.dbtypes import UTCDateTime
from app.extensions import db


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


def messages_of_request(request_id):
    """The messages stored for one request, oldest first (the request page shows them)."""
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.request_id == request_id).order_by(OutboxMessage.id)
    ).all()
