"""One row per erased contact. The contact itself is never stored: only an HMAC of it."""

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import isoformat
from app.dbtypes import UTCDateTime
from app.extensions import db


class ContactErasure(db.Model):
    __tablename__ = "contact_erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(5))  # email | sms (a phone number)
    # HMAC-SHA256 of the normalised contact, keyed with the app's SECRET_KEY (hex).
    contact_hash: Mapped[str] = mapped_column(String(64))
    erased_at = mapped_column(UTCDateTime, nullable=False)
    erased_by: Mapped[str] = mapped_column(String(254))  # the admin's email, or "cli"
    # What went, in numbers only ("3 requests, 1 testimonial, 2 files, …").
    summary: Mapped[str | None] = mapped_column(String(255))
    # The merchant lifted the block: orders from this contact are taken again.
    lifted_at = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(254))

    __table_args__ = (Index("ix_contact_erasures_hash", "contact_hash"),)

    def to_dict(self):
        return {
            "id": self.id,
            "channel": self.channel,
            "contact_hash": self.contact_hash,
            "erased_at": isoformat(self.erased_at),
            "erased_by": self.erased_by,
            "summary": self.summary,
            "lifted_at": isoformat(self.lifted_at),
            "lifted_by": self.lifted_by,
        }
