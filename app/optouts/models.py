"""One suppression list for both channels, the contact events that change it, and the
erasure list (contacts whose data was erased: the intake refuses their orders).

A contact is stored normalised (``normalise_contact``): an email address lower-cased, a
phone number in E.164. ``EMAIL`` and ``E164`` are the shapes every part of the app
accepts (the order webhook, Shopify's payloads, the merchant's forms).
"""

import re

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import isoformat, utcnow
from app.dbtypes import UTCDateTime
from app.extensions import db

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

OPTED_OUT, OPTED_IN = "opted_out", "opted_in"


class OptOut(db.Model):
    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(5))  # email | sms
    contact: Mapped[str] = mapped_column(String(254))  # lower-cased email or E.164 phone
    source: Mapped[str] = mapped_column(String(40))  # link, sms_stop, sendgrid, twilio_21610, merchant…
    detail: Mapped[str | None] = mapped_column(String(255))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (UniqueConstraint("channel", "contact", name="uq_optout_contact"),)


class ContactEvent(db.Model):
    """An opt-out or opt-in about a contact rather than a request: reported by a provider
    (SendGrid unsubscribe, Twilio STOP/START) or made by the merchant.

    Kept for two reasons: the unique ``dedupe_key`` makes a replayed webhook a no-op even
    when no request is involved (a STOP replayed after a START must not opt the number out
    again), and their times let a late opt-out that is older than the merchant's removal be
    recorded without being applied."""

    __tablename__ = "contact_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(5))  # email | sms
    contact: Mapped[str] = mapped_column(String(254))  # normalised like OptOut.contact
    type: Mapped[str] = mapped_column(String(20))  # opted_out | opted_in
    source: Mapped[str] = mapped_column(String(40))  # sms_stop, sms_start, sendgrid_unsubscribe, merchant…
    provider: Mapped[str | None] = mapped_column(String(20))
    # Provider events only: the provider's event id (or message id); None for merchant actions.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    applied: Mapped[bool] = mapped_column(default=True)  # False: older than a later opposite event
    detail: Mapped[str | None] = mapped_column(String(255))
    occurred_at = mapped_column(UTCDateTime, nullable=False)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (Index("ix_contact_events_contact", "channel", "contact", "occurred_at"),)

    def to_dict(self):
        return {
            "id": self.id,
            "channel": self.channel,
            "contact": self.contact,
            "type": self.type,
            "source": self.source,
            "provider": self.provider,
            "applied": self.applied,
            "detail": self.detail,
            "occurred_at": isoformat(self.occurred_at),
            "created_at": isoformat(self.created_at),
        }


def normalise_contact(channel, contact):
    return contact.strip().lower() if channel == "email" else contact.strip()


# One row per erased contact (app.erasure writes it, app.optouts.erasures reads it). The
# contact itself is never stored: only an HMAC of it.
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
